"""Binding services to algorithm versions, and the events workers receive for it."""

from __future__ import annotations

import dataclasses
import hashlib

from fastapi.testclient import TestClient

from gits_common.amqp import ModelChanged
from queue_manager.app import create_app
from tests.conftest import free_port
from tests.queue_manager.conftest import FEATURES, bind, upload


def test_binding_a_service_declares_its_queue_and_announces_its_model(client, broker):
    # Given a model and a worker listening for the service's model changes
    service = broker.service_name()
    listener = broker.listen(service)
    content = b"model for the service"
    upload(client, "demo", b"older")
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
    upload(client, "demo", b"1")
    upload(client, "demo", b"2")
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
    upload(client, "demo", b"1")
    bind(client, follower, "demo", "latest")
    bind(client, pinned, "demo", 1)
    follower_events, pinned_events = broker.listen(follower), broker.listen(pinned)

    # When a new version is uploaded
    new = upload(client, "demo", b"2").json()

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
    upload(client, "demo", b"1", use_case="sensors")
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
    upload(client, "demo", b"1")
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
    upload(client, "demo", b"1")
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
        upload(client, "demo", b"1")

        # When a service is bound, and a new version uploaded for it
        response = bind(client, service, "demo")
        new_version = upload(client, "demo", b"2")

        # Then both are stored; only the announcement is missing
        assert response.status_code == 201, response.text
        assert response.json()["announced"] is False
        assert new_version.status_code == 201
        stored = client.get(f"/queue_manager/services/{service}").json()
        assert stored["resolved_version"] == 2
    assert not broker.queue_exists(service)
