"""Creating and rebinding services through the admin, and what each worker really uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.test import Client

from gits_common.schemas import UseCase
from tests.django_admin.conftest import Platform, text, unique


def bind(browser: Client, url: str, name: str, algorithm: str, version: int | str):
    """Post the bind form as a user would."""
    form = {"name": name, "routing_key": f"{name}.data", "algorithm": f"{algorithm}@{version}"}
    return browser.post(url, form, follow=True)


def test_create_then_rebind_changes_the_service_in_queue_manager(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Given an algorithm with two versions
    algorithm = unique("algo")
    platform.upload(algorithm, use_case, b"v1")
    platform.upload(algorithm, use_case, b"v2")
    service = broker.service_name()

    # When a new service is bound to version 1
    created = bind(browser, "/services/new/", service, algorithm, 1)

    # Then queue_manager has it, bound by the logged-in user, and the user is told
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert (stored["algorithm_version"], stored["resolved_version"]) == (1, 1)
    assert stored["updated_by"] == "operator"
    assert f"Service {service} created" in text(created)

    # When it is rebound to follow the latest version, from its own form
    form = text(browser.get(f"/services/{service}/bind/"))
    assert f'value="{algorithm}@1" selected' in form  # the form shows the current binding
    rebound = bind(browser, f"/services/{service}/bind/", service, algorithm, "latest")

    # Then queue_manager resolves it to version 2, and the services page says so
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert (stored["algorithm_version"], stored["resolved_version"]) == ("latest", 2)
    assert f"Service {service} rebound" in text(rebound)
    listing = text(browser.get("/services/"))
    assert service in listing and "version 2" in listing


def test_a_rebind_keeps_the_service_name(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)

    # A tampered form cannot rename (and so create) another service
    other = unique("other")
    bind(browser, f"/services/{service}/bind/", other, algorithm, "latest")

    assert platform.get("queue_manager", f"/queue_manager/services/{other}") is None
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert stored["algorithm_version"] == "latest"


def test_binding_to_a_version_deleted_meanwhile_is_refused(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()

    # The form offered version 1; someone deletes it before the user submits
    with platform.http("queue_manager") as http:
        http.delete(f"/queue_manager/algorithms/{algorithm}/versions/1").raise_for_status()
    response = browser.post(
        "/services/new/",
        {"name": service, "routing_key": "rk", "algorithm": f"{algorithm}@1"},
    )

    # The form says which value is gone (the version is no longer a choice) and
    # queue_manager has no such service
    assert response.status_code == 422
    assert "Select a valid choice" in text(response)
    assert platform.get("queue_manager", f"/queue_manager/services/{service}") is None


def test_the_service_page_shows_what_each_worker_uses(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Given a service rebound from version 1 to 2, and two workers: one already took a
    # message with version 2, the other's newest job still used version 1
    algorithm = unique("algo")
    platform.upload(algorithm, use_case, b"v1")
    platform.upload(algorithm, use_case, b"v2")
    service = broker.service_name()
    platform.bind(service, algorithm, 2)
    now = datetime.now(UTC)
    record_jobs(
        platform,
        service,
        [
            ("worker-a", now - timedelta(minutes=5), f"{algorithm}:1"),
            ("worker-a", now - timedelta(minutes=1), f"{algorithm}:2"),
            ("worker-b", now - timedelta(minutes=3), f"{algorithm}:1"),
        ],
    )

    page = text(browser.get(f"/services/{service}/"))

    assert f"{algorithm}:{2}" in page
    worker_a = page[page.index("<td>worker-a</td>") :].split("</tr>")[0]
    worker_b = page[page.index("<td>worker-b</td>") :].split("</tr>")[0]
    assert f"{algorithm}:2" in worker_a and "not " not in worker_a
    assert f"{algorithm}:1" in worker_b and f"(not {algorithm}:2 yet)" in worker_b


def record_jobs(platform: Platform, service: str, jobs: list[tuple[str, datetime, str]]) -> None:
    """Jobs as workers record them: created, then finished with the model they used."""
    created = [
        {
            "message_id": unique("m"),
            "service": service,
            "payload": {},
            "routing_key": f"{service}.data",
            "worker": worker,
            "start_date": at.isoformat(),
        }
        for worker, at, _ in jobs
    ]
    finished = [
        {
            "service": service,
            "message_id": job["message_id"],
            "last_status": "finished",
            "model_version": model,
            "end_date": (at + timedelta(seconds=1)).isoformat(),
        }
        for job, (_, at, model) in zip(created, jobs, strict=True)
    ]
    with platform.http("queue_manager") as http:
        http.post("/queue_manager/jobs/batch", json={"jobs": created}).raise_for_status()
        http.patch("/queue_manager/jobs/batch", json={"jobs": finished}).raise_for_status()
