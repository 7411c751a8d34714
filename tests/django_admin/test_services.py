"""Creating and rebinding services through the admin, and what each worker really uses."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from django.test import Client
from django.utils.html import escapejs

from gits_common.schemas import UseCase
from tests.django_admin.conftest import Platform, text, unique


def bind(browser: Client, url: str, name: str, algorithm: str, version: int | str, **kw: Any):
    """Post the bind form as a user would."""
    form = {"name": name, "routing_key": f"{name}.data", "algorithm": f"{algorithm}@{version}"}
    return browser.post(url, form, **kw)


def error_box(page: str) -> str:
    """The words of a page's error box (the form's reasons), without markup."""
    found = re.search(r'<div class="error-box" role="alert">(.*?)</div>', page, re.S)
    assert found is not None, page
    return re.sub(r"<[^>]+>", "", found[1])


def words(page: str) -> str:
    """A page's text without markup."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))


@pytest.fixture(scope="module")
def other_use_case(platform: Platform, use_case: UseCase) -> UseCase:
    """A second use case with the same features (so the same model fits it)."""
    other = use_case.model_copy(update={"name": unique("dj_other")})
    with platform.http("ml_data_api") as http:
        http.post("/ml_data_api/use_cases", json=other.model_dump(mode="json")).raise_for_status()
    return other


def test_create_then_rebind_changes_the_service_in_queue_manager(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Waits for queue_manager's POST /queue_manager/services (creating is its own call).
    # Given an algorithm with two versions
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    platform.upload(algorithm, use_case)
    service = broker.service_name()

    # When a new service is bound to version 1
    created = bind(browser, "/services/new/", service, algorithm, 1, follow=True)

    # Then queue_manager has it, bound by the logged-in user, and the user is told
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert (stored["algorithm_version"], stored["resolved_version"]) == (1, 1)
    assert stored["updated_by"] == "operator"
    assert f"Service {service} created" in text(created)

    # When it is rebound to follow the latest version, from its own form
    form = text(browser.get(f"/services/{service}/bind/"))
    assert f'value="{algorithm}@1" selected' in form  # the form shows the current binding
    rebound = bind(browser, f"/services/{service}/bind/", service, algorithm, "latest", follow=True)

    # Then queue_manager resolves it to version 2, and the services page says so
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert (stored["algorithm_version"], stored["resolved_version"]) == ("latest", 2)
    assert f"Service {service} rebound" in text(rebound)
    listing = text(browser.get("/services/"))
    assert service in listing and "version 2" in listing


def test_a_new_service_with_an_existing_name_is_refused_and_changes_nothing(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Waits for queue_manager's POST /queue_manager/services (409 on a name in use).
    # Given a service bound to version 1
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)

    # When "New service" is submitted with its name and another version
    response = browser.post(
        "/services/new/",
        {"name": service, "routing_key": "another.key", "algorithm": f"{algorithm}@2"},
    )

    # Then it is refused: the form says the service exists and where to rebind it
    page = text(response)
    assert response.status_code == 409, page
    assert f"A service named {service} exists; rebind it from its page." in words(page)
    assert f'<a href="/services/{service}/">its page</a>' in page
    assert "queue_manager refused" in error_box(page) and "(409)" not in error_box(page)
    assert "nothing was changed" in error_box(page)
    # And the service is as it was
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert (stored["algorithm_version"], stored["routing_key"]) == (1, f"{service}.data")


def test_a_rebind_to_another_use_case_is_refused_with_both_named(
    browser: Client, platform: Platform, use_case: UseCase, other_use_case: UseCase, broker
) -> None:
    # Given a service of one use case, and an algorithm of another
    algorithm, foreign = unique("algo"), unique("foreign")
    platform.upload(algorithm, use_case)
    platform.upload(foreign, other_use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)

    # When the service is rebound to the other use case's algorithm
    response = bind(browser, f"/services/{service}/bind/", service, foreign, 1)

    # Then queue_manager's reason, naming both use cases, is on the form
    reason = error_box(text(response))
    assert response.status_code in (409, 422), reason
    assert "queue_manager refused" in reason and "nothing was changed" in reason
    assert use_case.name in reason and other_use_case.name in reason
    # And the service still uses its own use case's algorithm
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert (stored["algorithm_name"], stored["use_case"]) == (algorithm, use_case.name)


def test_a_rebind_keeps_the_service_name(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)

    # A tampered form cannot rename (and so create) another service
    other = unique("other")
    bind(browser, f"/services/{service}/bind/", other, algorithm, "latest", follow=True)

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
    platform.upload(algorithm, use_case)
    platform.upload(algorithm, use_case)
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


def test_a_model_the_workers_cannot_use_is_shown_with_their_reason(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Given a service whose workers reported its model as unusable
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    bind(browser, "/services/new/", service, algorithm, 1)
    with platform.http("queue_manager") as http:
        http.put(
            f"/queue_manager/services/{service}/model_status",
            json={
                "algorithm_name": algorithm,
                "version": 1,
                "usable": False,
                "reason": "UnpicklingError: invalid load key 'h'",
                "worker": "worker-7",
            },
        ).raise_for_status()

    # Then its page and the list say so, with the reason
    page = html.unescape(words(browser.get(f"/services/{service}/").content.decode()))
    listed = words(browser.get("/services/").content.decode())
    # (in words: the exception's class name is for the worker's log)
    assert "Model worksno: invalid load key 'h' (says worker-7" in page
    assert "unusable" in listed


def test_an_idle_service_is_deleted_from_its_page_with_its_queue(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Given a service whose queue holds no message; its page offers to delete it, asking
    # first
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)
    page = text(browser.get(f"/services/{service}/"))
    assert f'action="/services/{service}/delete/"' in page
    assert f"confirm('Delete service {escapejs(service)} and its queue?" in page

    # When it is deleted
    response = browser.post(f"/services/{service}/delete/", follow=True)

    # Then queue_manager has no such service, its queue is gone, and the list says so
    assert response.redirect_chain[-1][0] == "/services/"
    assert f"Deleted service {service} and its queue." in words(text(response))
    assert platform.get("queue_manager", f"/queue_manager/services/{service}") is None
    assert not broker.queue_exists(service)


def test_deleting_a_service_with_waiting_messages_is_refused_with_their_count(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Given a service whose queue holds 3 messages no worker took
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)
    broker.publish(f"{service}.data", [b"{}"] * 3)

    # When it is deleted from its page
    response = browser.post(f"/services/{service}/delete/", follow=True)

    # Then it is refused in words, with the count, and the service and queue are kept
    said = words(text(response))
    assert response.redirect_chain[-1][0] == f"/services/{service}/"
    assert f"Service {service} was not deleted: 3 messages still wait in its queue" in said
    assert "Nothing was changed." in said
    assert "409" not in said and "message(s)" not in said
    assert platform.get("queue_manager", f"/queue_manager/services/{service}") is not None
    assert broker.queue_exists(service)


def test_a_deleted_services_dead_letters_are_kept_and_counted(
    browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    # Given an idle service whose dead-letter queue holds 2 messages
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)
    dead_letter(broker, f"{service}.dead", 2)

    response = browser.post(f"/services/{service}/delete/", follow=True)

    # Then the service is gone, and the user is told where its dead letters are
    said = words(text(response))
    assert f"Deleted service {service} and its queue." in said
    assert f"Its dead-letter queue {service}.dead was kept: it holds 2 messages" in said
    assert broker.queue_exists(f"{service}.dead") and not broker.queue_exists(service)


def dead_letter(broker, queue: str, count: int) -> None:
    """Put messages straight into a dead-letter queue, as RabbitMQ does with a message
    that failed too often."""

    async def send(channel: aio_pika.abc.AbstractChannel) -> None:
        for _ in range(count):
            message = aio_pika.Message(b"{}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue)

    broker._run(send, confirms=True)


def test_only_managers_may_delete_a_service(
    viewer_browser: Client, platform: Platform, use_case: UseCase, broker
) -> None:
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)

    page = text(viewer_browser.get(f"/services/{service}/"))
    response = viewer_browser.post(f"/services/{service}/delete/")

    assert "/delete/" not in page
    assert response.status_code == 403 and "Model managers" in text(response)
    assert platform.get("queue_manager", f"/queue_manager/services/{service}") is not None


def test_the_list_is_filtered_by_use_case_in_the_url(
    browser: Client, platform: Platform, use_case: UseCase, other_use_case: UseCase, broker
) -> None:
    # Given a service of each of two use cases
    mine, theirs = unique("algo"), unique("algo")
    platform.upload(mine, use_case)
    platform.upload(theirs, other_use_case)
    first, second = broker.service_name(), broker.service_name()
    platform.bind(first, mine, 1)
    platform.bind(second, theirs, 1)

    narrowed = text(browser.get("/services/", {"use_case": other_use_case.name}))

    assert f"/services/{second}/" in narrowed and f"/services/{first}/" not in narrowed
    assert re.search(rf'<option value="{other_use_case.name}" selected>', narrowed), narrowed
    assert f"Services of {other_use_case.name}" in narrowed
