"""Uploading, listing (by use case), downloading, deleting and comparing model versions
through the admin: queue_manager holds the files, retraining_api the metrics its jobs
measured, the admin only shows them."""

from __future__ import annotations

import re
from typing import Any

import psycopg2
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from django_admin.site.forms import UploadForm
from django_admin.site.retraining import compare_versions, retraining_job
from django_admin.site.urls import NAME_BODY
from gits_common.registry import NAME_PATTERN
from gits_common.schemas import UseCase
from retraining_api import store
from retraining_api.schemas import JobKind
from tests.django_admin.conftest import Platform, Retraining, sha256, text, unique
from tests.model_files import for_use_case


def words(page: str) -> str:
    """A page's text without markup."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))


def upload(browser: Client, name: str, use_case: UseCase, content: bytes, **extra: str):
    """Post the upload form as a user would."""
    form = {
        "name": name,
        "use_case": use_case.name,
        "description": "trained on the spring data",
        "file": SimpleUploadedFile("C:\\Users\\me\\../../model final.pkl", content),
        **extra,
    }
    return browser.post("/algorithms/upload/", form)


def test_the_form_accepts_exactly_the_names_queue_manager_accepts() -> None:
    # Both read queue_manager's rule from gits_common.registry; the URLs too.
    assert UploadForm.base_fields["name"].regex.pattern == NAME_PATTERN
    assert f"^{NAME_BODY}$" == NAME_PATTERN


def test_upload_stores_a_version_in_queue_manager(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    # Given the upload form, which offers the use cases ml_data_api defines
    form_page = text(browser.get("/algorithms/upload/"))
    assert use_case.name in form_page

    # When a model file is uploaded under a new name
    name = unique("algo")
    content = for_use_case(use_case, seed=1)
    response = upload(browser, name, use_case, content)

    # Then queue_manager holds version 1 with the file's checksum, the use case's task,
    # features and target, and the logged-in user as uploader
    assert response.status_code == 302 and response["Location"] == f"/algorithms/{name}/"
    [stored] = platform.versions(name)
    assert stored["version"] == 1
    assert stored["sha256"] == sha256(content)
    assert stored["size"] == len(content)
    assert (stored["task"], stored["target"]) == ("regression", "quality")
    assert stored["features"] == ["temp_A", "temp_B", "humidity"]
    assert stored["uploaded_by"] == "operator"
    assert stored["filename"] == f"{name}-v1.pkl"  # never the browser's file name

    # And the user is told, on the algorithm's page, which version and checksum it got
    page = text(browser.get(response["Location"]))
    assert f"Uploaded {name} version 1" in page
    assert sha256(content) in page


def test_a_second_upload_is_the_next_version_and_the_list_shows_it(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    name = unique("algo")
    upload(browser, name, use_case, for_use_case(use_case, seed=1))
    upload(browser, name, use_case, for_use_case(use_case, seed=2))

    assert [v["version"] for v in platform.versions(name)] == [2, 1]
    listing = text(browser.get("/algorithms/"))
    row = re.search(rf"<tr>\s*<td><a href=\"/algorithms/{name}/\">.*?</tr>", listing, re.S)
    assert row is not None
    assert "2 (latest 2)" in row.group(0)
    assert sha256(for_use_case(use_case, seed=2))[:14] in row.group(0)
    assert use_case.name in row.group(0)


def test_too_large_a_file_is_refused_and_not_stored(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    # Given the tests' limit of 1 MB (DJANGO_MAX_UPLOAD_MB)
    name = unique("big")
    response = upload(browser, name, use_case, b"x" * (1024 * 1024 + 1))

    assert response.status_code == 422
    assert "the admin takes model files of at most 1 MB" in text(response)
    assert "Nothing was uploaded" in text(response)
    assert "DJANGO_" not in text(response)  # the limit in words, not the setting's name
    assert platform.versions(name) == []


def test_a_file_queue_manager_cannot_load_is_refused_with_its_reason_on_the_form(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    # Waits for queue_manager's upload validation (422 naming the check that failed).
    # Given a text file where a model file should be, which queue_manager refuses
    junk = b"hello\n"
    with platform.http("queue_manager") as http:
        direct = http.post(
            "/queue_manager/algorithms",
            data={
                "name": unique("junk"),
                "use_case": use_case.name,
                "task": "regression",
                "features": '["temp_A", "temp_B", "humidity"]',
            },
            files={"file": ("m.pkl", junk)},
        )
    assert direct.status_code == 422, direct.text
    reason = direct.json()["detail"]

    # When it is uploaded through the admin
    name = unique("junk")
    response = upload(browser, name, use_case, junk)

    # Then queue_manager's reason is on the form, in words, and nothing is stored
    page = text(response)
    assert response.status_code == 422, page
    assert "queue_manager refused: model check 'load' failed" in page
    assert "the file is not a loadable model file" in page and "(422)" not in page
    assert "load" in reason
    assert platform.versions(name) == []
    # And the form keeps what the user entered, so that only the file is chosen again
    assert f'value="{name}"' in page
    assert re.search(rf'<option value="{use_case.name}"[^>]* selected>', page), page
    assert "trained on the spring data" in page


def test_a_name_queue_manager_would_refuse_is_refused_in_the_form(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    response = upload(browser, "../etc/passwd", use_case, b"model")

    assert response.status_code == 422
    assert "Not a valid name" in text(response)
    assert platform.versions("passwd") == []


def test_delete_removes_an_unused_version(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    name = unique("algo")
    platform.upload(name, use_case)
    platform.upload(name, use_case)

    response = browser.post(f"/algorithms/{name}/versions/1/delete/", follow=True)

    assert [v["version"] for v in platform.versions(name)] == [2]
    assert f"Deleted {name} version 1." in text(response)


def test_delete_is_refused_while_a_service_uses_the_version(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Given a version a service's workers use
    name = unique("algo")
    service = broker.service_name()
    platform.upload(name, use_case)
    platform.bind(service, name, 1)

    # Its page offers no delete button, and says why
    page = text(browser.get(f"/algorithms/{name}/"))
    assert "in use" in page and service in page
    assert f"/algorithms/{name}/versions/1/delete/" not in page

    # When someone deletes it anyway (an old tab, a race)
    response = browser.post(f"/algorithms/{name}/versions/1/delete/", follow=True)

    # Then the refusal is shown in words, and the version is still there
    said = words(text(response))
    assert f"{name} version 1 was not deleted: a service uses it" in said
    assert "Nothing was changed." in said and "409" not in said
    assert [v["version"] for v in platform.versions(name)] == [1]


def test_an_unknown_algorithm_is_a_readable_404(browser: Client, platform: Platform) -> None:
    response = browser.get("/algorithms/no-such-algorithm/")
    assert response.status_code == 404
    assert "no algorithm named 'no-such-algorithm'" in text(response)


def test_a_manager_downloads_a_version_as_queue_manager_stores_it(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    # Given a version of an algorithm, whose page links its file
    name = unique("algo")
    content = for_use_case(use_case, seed=7)
    platform.upload(name, use_case, content)
    page = text(browser.get(f"/algorithms/{name}/"))
    assert f'href="/algorithms/{name}/versions/1/file/"' in page

    # When the operator who may manage models follows it
    response = browser.get(f"/algorithms/{name}/versions/1/file/")

    # Then the file comes streamed, as stored, with its name and checksum to check it by
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == content
    assert response["X-Checksum-SHA256"] == sha256(content)
    assert response["Content-Disposition"] == f'attachment; filename="{name}-v1.pkl"'
    assert response["Content-Length"] == str(len(content))


def test_a_read_only_operator_neither_sees_nor_gets_a_model_file(
    viewer_browser: Client, platform: Platform, use_case: UseCase
) -> None:
    name = unique("algo")
    platform.upload(name, use_case)

    page = text(viewer_browser.get(f"/algorithms/{name}/"))
    response = viewer_browser.get(f"/algorithms/{name}/versions/1/file/")

    # A model file is code that runs when loaded: its checksum is shown, its bytes are not
    assert "/file/" not in page
    assert response.status_code == 403
    refusal = words(text(response))
    assert "may look at models but not download their files" in refusal
    assert "Model managers" in refusal and "Nothing was changed." in refusal


def test_downloading_a_version_that_is_gone_says_so_in_words(
    browser: Client, platform: Platform, use_case: UseCase
) -> None:
    name = unique("algo")
    platform.upload(name, use_case)

    response = browser.get(f"/algorithms/{name}/versions/5/file/", follow=True)

    box = re.search(r'<ul class="messages">(.*?)</ul>', text(response), re.DOTALL)
    assert box is not None
    said = words(box[1])
    assert f"queue_manager no longer holds the file of {name} version 5" in said
    # (the message, not the page: a random name may hold "404")
    assert "404" not in said.replace(name, "") and "NotFound" not in said


def test_the_list_is_filtered_by_use_case_in_the_url(
    browser: Client, platform: Platform, use_case: UseCase, other_use_case: UseCase
) -> None:
    # Given algorithms of two use cases
    mine, theirs = unique("algo"), unique("algo")
    platform.upload(mine, use_case)
    platform.upload(theirs, other_use_case)

    # When the list is narrowed to one use case (a plain GET form: the URL keeps it)
    narrowed = text(browser.get("/algorithms/", {"use_case": use_case.name}))

    # Then only its algorithms are listed, and the select shows the choice
    assert f"/algorithms/{mine}/" in narrowed and f"/algorithms/{theirs}/" not in narrowed
    assert re.search(rf'<option value="{use_case.name}" selected>', narrowed), narrowed
    every = text(browser.get("/algorithms/"))
    assert f"/algorithms/{mine}/" in every and f"/algorithms/{theirs}/" in every
    # And a use case no algorithm has is said in words, over an empty list
    nothing = words(text(browser.get("/algorithms/", {"use_case": "no_such_case"})))
    assert "No algorithm has a version of use case no_such_case." in nothing
    assert "No algorithm of use case no_such_case." in nothing


@pytest.fixture(scope="module")
def other_use_case(platform: Platform, use_case: UseCase) -> UseCase:
    """A second use case with the same features (so the same model fits it)."""
    other = use_case.model_copy(update={"name": unique("dj_other")})
    with platform.http("ml_data_api") as http:
        http.post("/ml_data_api/use_cases", json=other.model_dump(mode="json")).raise_for_status()
    return other


def scored(label: str, champion: dict[str, Any], challenger: dict[str, Any]) -> dict[str, Any]:
    """A finished retraining job's result (retraining_api.jobs) whose champion was the
    version `label` and whose challenger was promoted as the next version."""
    name, _, version = label.rpartition(":")
    return {
        "retrained_model_results": challenger,
        "previous_model_results": champion,
        "champion": label,
        "metric": "MAE",
        "higher_is_better": False,
        "holdout_rows": 300,
        "holdout": {"testing": 250, "production": 50},
        "decision": None,
        "promotion": {
            "from_version": label,
            "to_version": f"{name}:{int(version) + 1}",
            "requested_by": "operator",
        },
    }


def test_two_versions_metrics_are_compared_side_by_side(
    browser: Client,
    platform: Platform,
    use_case: UseCase,
    retraining: Retraining,
    postgres_dsn: str,
) -> None:
    # Given three versions; a retraining job scored version 1 (its champion) and version
    # 2 (its challenger, promoted) on the same held-out rows; none scored version 3
    name = unique("algo")
    for _ in range(3):
        platform.upload(name, use_case)
    champion = {"Model": "Linear Regression", "MAE": 0.9, "R2": 0.5}
    challenger = {"Model": "Ridge Regression", "MAE": 0.8, "R2": 0.6}
    job_id = finished_job(postgres_dsn, use_case.name, scored(f"{name}:1", champion, challenger))

    # When versions 1 and 2 are compared (the algorithm's page links the two newest)
    assert f"first={name}%3A2&second={name}%3A3" in text(browser.get(f"/algorithms/{name}/"))
    page = text(browser.get("/algorithms/compare/", {"first": f"{name}:1", "second": f"{name}:2"}))

    # Then both columns and the difference are shown, with which is better, and the job
    rows = words(page)
    assert f"Both scored by retraining job #{job_id} on the same 300 held-out rows" in rows
    assert "MAE 0.9000 0.8000 -0.1000 (the second is better)" in rows
    assert "R2 0.5000 0.6000 +0.1000 (the second is better)" in rows
    assert "Linear Regression, as champion" in rows and "Ridge Regression, as challenger" in rows

    # And a version no job scored is said to have no metrics yet
    missing = words(
        text(browser.get("/algorithms/compare/", {"first": f"{name}:2", "second": f"{name}:3"}))
    )
    assert f"{name}:3 has no metrics yet" in missing


def test_versions_of_different_use_cases_or_the_same_version_are_not_compared(
    browser: Client, platform: Platform, use_case: UseCase, other_use_case: UseCase
) -> None:
    mine, theirs = unique("algo"), unique("algo")
    platform.upload(mine, use_case)
    platform.upload(theirs, other_use_case)

    apart = browser.get("/algorithms/compare/", {"first": f"{mine}:1", "second": f"{theirs}:1"})
    same = browser.get("/algorithms/compare/", {"first": f"{mine}:1", "second": f"{mine}:1"})

    assert apart.status_code == 422 and same.status_code == 422
    assert "their metrics were measured on different data" in words(text(apart))
    assert "Choose two different versions." in text(same)


def finished_job(dsn: str, use_case: str, result: dict[str, Any]) -> int:
    """A finished retraining job in retraining_api's table, written by its own store."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        job = store.insert_job(
            conn=conn,
            kind=JobKind.retraining,
            use_case=use_case,
            service=None,
            request={"use_case": use_case},
            requested_by="operator",
        )
        assert job is not None
        store.finish_job(conn=conn, job_id=job.id, result=result)
    finally:
        conn.close()
    return job.id


def test_without_a_shared_job_each_versions_newest_scoring_is_compared() -> None:
    # Given (newest first) a job whose challenger was registered as m:3, and two older
    # jobs that scored m:1 as their champion
    def job(job_id: int, result: dict[str, Any]) -> dict[str, Any]:
        return retraining_job(
            {"id": job_id, "use_case": "u", "status": "finished", "requested_by": "x"}
            | {"created_at": "2025-03-01T00:00:00+00:00", "result": result}
        )

    jobs = [
        job(
            9,
            {"retrained_model_results": {"Model": "Ridge", "R2": 0.7}, "champion": None}
            | {"registered": {"name": "m", "version": 3, "label": "m:3"}},
        ),
        job(8, {"previous_model_results": {"Model": "LR", "R2": 0.4}, "champion": "m:1"}),
        job(7, {"previous_model_results": {"Model": "LR", "R2": 0.1}, "champion": "m:1"}),
    ]

    comparison = compare_versions("m:1", "m:3", jobs)

    # Then each version's newest scoring is used, and the page is told they differ in rows
    assert comparison.first is not None and comparison.second is not None
    assert (comparison.first.job_id, comparison.second.job_id) == (8, 9)
    assert not comparison.same_job
    [row] = comparison.rows
    assert (row.metric, row.first, row.second, row.better) == ("R2", 0.4, 0.7, "second")
    assert row.difference == pytest.approx(0.3)
