"""Binding services to algorithm versions, and the events workers receive for it."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from fastapi.testclient import TestClient

from gits_common.amqp import ModelChanged
from queue_manager.app import create_app
from tests.conftest import free_port
from tests.queue_manager.conftest import FEATURES, bind, model, upload


def test_binding_a_service_declares_its_queue_and_announces_its_model(client, broker):
    # Given a model and a worker listening for the service's model changes
    service = broker.service_name()
    listener = broker.listen(service)
    content = model()
    upload(client, "demo")
    upload(client, "demo", content)

    # When the service is bound to the latest version
    response = bind(client, service, "demo", use_case="sensors", updated_by="ops")

    # Then the binding is stored, resolved and announced
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["announced"] is True
    assert body["algorithm_version"] == "latest"
    assert body["resolved_version"] == 2
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["features"] == FEATURES
    assert body["routing_key"] == f"{service}.data"
    assert body["updated_by"] == "ops"
    assert broker.events(listener) == [
        ModelChanged(service=service, algorithm="demo", version=2, sha256=body["sha256"])
    ]
    # And its work queue waits for workers, with its dead-letter queue
    assert broker.queue_exists(service)
    assert broker.queue_exists(f"{service}.dead")
    stored = client.get(f"/queue_manager/services/{service}").json()
    assert {**stored, "announced": True} == body


def test_rebinding_answers_200_and_announces_the_pinned_version(client, broker):
    service = broker.service_name()
    upload(client, "demo")
    upload(client, "demo")
    bind(client, service, "demo")
    listener = broker.listen(service)

    response = bind(client, service, "demo", 1)

    assert response.status_code == 200
    assert response.json()["algorithm_version"] == 1
    assert response.json()["resolved_version"] == 1
    assert [e.version for e in broker.events(listener)] == [1]
    assert len(client.get("/queue_manager/services").json()) == 1


def test_a_new_version_is_announced_to_latest_followers_but_not_to_pinned_ones(client, broker):
    # Given one service following the latest version and one pinned to version 1
    follower, pinned = broker.service_name(), broker.service_name()
    upload(client, "demo")
    bind(client, follower, "demo", "latest")
    bind(client, pinned, "demo", 1)
    follower_events, pinned_events = broker.listen(follower), broker.listen(pinned)

    # When a new version is uploaded
    new = upload(client, "demo").json()

    # Then only the follower hears of it, and now resolves to it
    assert broker.events(follower_events) == [
        ModelChanged(service=follower, algorithm="demo", version=2, sha256=new["sha256"])
    ]
    assert broker.events(pinned_events, wait=0.5) == []
    assert new["services"] == [follower]
    assert client.get(f"/queue_manager/services/{follower}").json()["resolved_version"] == 2
    assert client.get(f"/queue_manager/services/{pinned}").json()["resolved_version"] == 1


def test_bindings_to_missing_algorithms_or_another_use_case_are_refused(client, broker):
    service = broker.service_name()
    upload(client, "demo", use_case="sensors")
    cases = [
        (bind(client, service, "nope"), 404, "no algorithm named 'nope'"),
        (bind(client, service, "demo", 3), 404, "algorithm 'demo' has no version 3"),
        (
            bind(client, service, "demo", use_case="other_line"),
            422,
            "differs from algorithm 'demo''s use case 'sensors'",
        ),
    ]
    for response, code, reason in cases:
        assert response.status_code == code
        assert reason in response.json()["detail"]
    assert client.get("/queue_manager/services").json() == []
    assert not broker.queue_exists(service)


def test_services_are_listed_read_and_deleted(client, broker):
    first, second = sorted([broker.service_name(), broker.service_name()])
    upload(client, "demo")
    bind(client, first, "demo")
    bind(client, second, "demo", 1)

    listed = client.get("/queue_manager/services").json()
    deleted = client.delete(f"/queue_manager/services/{first}")

    assert [s["name"] for s in listed] == [first, second]
    assert deleted.status_code == 204
    assert client.get(f"/queue_manager/services/{first}").status_code == 404
    assert "no service named" in client.get(f"/queue_manager/services/{first}").json()["detail"]
    assert client.delete(f"/queue_manager/services/{first}").status_code == 404
    assert [s["name"] for s in client.get("/queue_manager/services").json()] == [second]


def test_the_original_get_services_url_filters_by_name(client, broker):
    first, second = broker.service_name(), broker.service_name()
    upload(client, "demo")
    bind(client, first, "demo")
    bind(client, second, "demo")

    every = client.get("/queue_manager/get_services").json()
    one = client.get("/queue_manager/get_services", params={"service_name": first}).json()
    none = client.get("/queue_manager/get_services", params={"service_name": "nobody"})

    assert {s["name"] for s in every} == {first, second}
    assert [s["name"] for s in one] == [first]
    assert one[0]["resolved_version"] == 1
    assert none.status_code == 200
    assert none.json() == []


def test_without_rabbitmq_the_binding_is_saved_but_not_announced(settings, auth, broker):
    # Given RabbitMQ at an address where nothing listens
    offline = dataclasses.replace(
        settings, amqp_url=f"amqp://gits:nothing@127.0.0.1:{free_port()}/"
    )
    service = broker.service_name()
    with TestClient(create_app(offline), headers=auth) as client:
        upload(client, "demo")

        # When a service is bound, and a new version uploaded for it
        response = bind(client, service, "demo")
        new_version = upload(client, "demo")

        # Then both are stored; only the announcement is missing
        assert response.status_code == 201, response.text
        assert response.json()["announced"] is False
        assert new_version.status_code == 201
        stored = client.get(f"/queue_manager/services/{service}").json()
        assert stored["resolved_version"] == 2
    assert not broker.queue_exists(service)


def create(client: TestClient, service: str, algorithm: str, **body: Any) -> Any:
    """POST a new service."""
    fields = {"name": service, "routing_key": f"{service}.data", "algorithm_name": algorithm}
    return client.post("/queue_manager/services", json={**fields, **body})


def test_creating_a_service_refuses_a_name_that_exists_and_leaves_it_bound(client, broker):
    # Given a service bound to v1
    service = broker.service_name()
    upload(client, "demo")
    upload(client, "demo")
    first = create(client, service, "demo", algorithm_version=1, updated_by="ops")
    assert first.status_code == 201, first.text
    assert first.json()["resolved_version"] == 1
    assert first.json()["announced"] is True

    # When "new service" is asked again with that name and another version
    again = create(client, service, "demo", algorithm_version=2)

    # Then it is refused, saying how to rebind, and the binding is unchanged
    assert again.status_code == 409
    assert f"service {service!r} exists" in again.json()["detail"]
    assert "PUT /queue_manager/services/" in again.json()["detail"]
    assert client.get(f"/queue_manager/services/{service}").json()["resolved_version"] == 1


def test_a_rebinding_that_would_change_the_use_case_is_refused(client, broker):
    service = broker.service_name()
    upload(client, "demo", use_case="line_1")
    upload(client, "other", use_case="line_2")
    assert bind(client, service, "demo").status_code == 201

    moved = bind(client, service, "other")

    assert moved.status_code == 409
    assert "serves use case 'line_1'" in moved.json()["detail"]
    assert "'line_2'" in moved.json()["detail"]
    stored = client.get(f"/queue_manager/services/{service}").json()
    assert (stored["algorithm_name"], stored["use_case"]) == ("demo", "line_1")


def test_workers_report_a_model_as_unusable_and_a_rebinding_clears_it(client, broker):
    # Given a service on v1
    service = broker.service_name()
    upload(client, "demo")
    bind(client, service, "demo", 1)
    assert client.get(f"/queue_manager/services/{service}").json()["model_status"] is None
    report = {"algorithm_name": "demo", "version": 1, "usable": False, "worker": "w-1"}

    # When a worker says v1 cannot be loaded
    said = client.put(
        f"/queue_manager/services/{service}/model_status",
        json={**report, "reason": "UnpicklingError: invalid load key"},
    )

    # Then the service shows it, with the reason
    assert said.status_code == 200, said.text
    status = client.get(f"/queue_manager/services/{service}").json()["model_status"]
    assert status["usable"] is False
    assert status["reason"] == "UnpicklingError: invalid load key"
    assert status["worker"] == "w-1"
    # And a report on a version the service does not use changes nothing
    stale = client.put(
        f"/queue_manager/services/{service}/model_status", json={**report, "version": 7}
    )
    assert stale.json()["model_status"]["version"] == 1
    # And rebinding forgets the report on the old model
    upload(client, "demo")
    bind(client, service, "demo", 2)
    assert client.get(f"/queue_manager/services/{service}").json()["model_status"] is None
    unknown = client.put("/queue_manager/services/nobody/model_status", json=report)
    assert unknown.status_code == 404


def test_deleting_a_service_with_waiting_messages_is_refused_with_their_count(client, broker):
    # Given a service whose queue holds 3 messages no worker took
    service = broker.service_name()
    upload(client, "demo")
    bind(client, service, "demo")
    broker.publish(f"{service}.data", [b"{}"] * 3)

    # When it is deleted, Then it is refused with the count, and nothing is gone
    refused = client.delete(f"/queue_manager/services/{service}")
    assert refused.status_code == 409
    assert "3 message(s) wait" in refused.json()["detail"]
    assert client.get(f"/queue_manager/services/{service}").status_code == 200
    assert broker.queue_exists(service)


def test_deleting_an_idle_service_removes_its_queues(client, broker):
    service = broker.service_name()
    upload(client, "demo")
    bind(client, service, "demo")

    deleted = client.delete(f"/queue_manager/services/{service}")

    assert deleted.status_code == 204
    assert client.get(f"/queue_manager/services/{service}").status_code == 404
    assert not broker.queue_exists(service)
    assert not broker.queue_exists(f"{service}.quarantine")
    assert not broker.queue_exists(f"{service}.dead")


def test_a_full_queue_dead_letters_its_oldest_messages(client, broker, monkeypatch):
    # Given a service whose queue may hold 5 messages
    monkeypatch.setattr("gits_common.amqp.MAX_QUEUE_LENGTH", 5)
    service = broker.service_name()
    upload(client, "demo")
    bind(client, service, "demo")

    # When 8 arrive and no worker takes them
    broker.publish(f"{service}.data", [f'{{"n": {i}}}'.encode() for i in range(8)])

    # Then the queue keeps the newest 5 and the oldest 3 went to the dead-letter queue
    assert broker.depth(service) == 5
    assert broker.depth(f"{service}.dead") == 3


def test_a_queue_declared_before_the_length_limit_is_used_as_it_is(client, broker, caplog):
    # Given the service's queue as an earlier GITS declared it (no length limit)
    service = broker.service_name()

    async def declare_old(channel: Any) -> None:
        await channel.declare_queue(
            service, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 5}
        )

    broker._run(declare_old)
    upload(client, "demo")

    # When the service is bound, Then the binding works and the old queue is kept
    response = bind(client, service, "demo")
    assert response.status_code == 201, response.text
    assert response.json()["announced"] is True
    assert "declared earlier with other arguments" in caplog.text
    broker.publish(f"{service}.data", [b"{}"])
    assert broker.depth(service) == 1
