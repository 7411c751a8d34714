"""Uploading, listing and deleting model files through the admin: queue_manager holds the
result, the admin only shows it."""

from __future__ import annotations

import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from django_admin.site.forms import UploadForm
from django_admin.site.urls import NAME_BODY
from gits_common.registry import NAME_PATTERN
from gits_common.schemas import UseCase
from tests.django_admin.conftest import Platform, sha256, text, unique
from tests.model_files import for_use_case


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
    assert "the limit is 1 MB" in text(response)
    assert "Nothing was uploaded" in text(response)
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
    assert f"queue_manager refused (422): {reason}" in page
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

    # Then queue_manager's refusal is shown, and the version is still there
    assert "queue_manager refused (409)" in text(response)
    assert "nothing was changed" in text(response)
    assert [v["version"] for v in platform.versions(name)] == [1]


def test_an_unknown_algorithm_is_a_readable_404(browser: Client, platform: Platform) -> None:
    response = browser.get("/algorithms/no-such-algorithm/")
    assert response.status_code == 404
    assert "no algorithm named 'no-such-algorithm'" in text(response)
