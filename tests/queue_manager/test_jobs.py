"""Jobs, one per sensor message: idempotent creation, updates, filters and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from queue_manager.app import create_app

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def job(message_id: str, **change: Any) -> dict[str, Any]:
    """A valid JobCreate body."""
    return {
        "message_id": message_id,
        "service": "line_a",
        "payload": {"timestamp": "2025-03-01T00:00:00+00:00", "temp_A": 242.5},
        "routing_key": "line_a.data",
        "worker": "worker-1",
        **change,
    }


def create(client: TestClient, *jobs: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/queue_manager/jobs/batch", json={"jobs": list(jobs)})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def update(client: TestClient, *updates: dict[str, Any]) -> list[dict[str, Any]]:
    body = [{"service": "line_a", **u} for u in updates]
    response = client.patch("/queue_manager/jobs/batch", json={"jobs": body})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def test_a_batch_creates_jobs_in_the_original_shape(client: TestClient):
    before = datetime.now(UTC)
    created = create(client, job("m-1"), job("m-2", start_date=T0.isoformat()))

    assert [j["message_id"] for j in created] == ["m-1", "m-2"]
    first = created[0]
    assert first["service"] == "line_a"
    assert first["payload"] == job("m-1")["payload"]
    assert first["last_status"] == "processing"
    assert first["result"] is first["message"] is first["model_version"] is None
    metadata = first["metadata"]
    assert metadata["routing_key"] == "line_a.data"
    assert metadata["worker"] == "worker-1"
    assert metadata["end_date"] is metadata["time_elapsed_sec"] is None
    started = datetime.fromisoformat(metadata["start_date"])
    assert before - timedelta(seconds=1) <= started <= datetime.now(UTC)
    assert created[1]["metadata"]["start_date"] == "2025-03-01T00:00:00Z"
    assert client.get("/queue_manager/jobs/line_a/m-2").json() == created[1]


def test_a_redelivered_message_does_not_reset_its_finished_job(client: TestClient):
    # Given a job that finished
    create(client, job("m-1", start_date=T0.isoformat()))
    finished = update(client, {"message_id": "m-1", "last_status": "finished", "result": 1.5})[0]

    # When the message is delivered again, in a batch with a new one
    again = create(client, job("m-0"), job("m-1", worker="worker-2"), job("m-2"))

    # Then the finished job is answered as it was, in request order, and the new ones exist
    assert [j["message_id"] for j in again] == ["m-0", "m-1", "m-2"]
    assert again[1] == finished
    assert again[1]["last_status"] == "finished"
    assert again[1]["metadata"]["worker"] == "worker-1"
    assert client.get("/queue_manager/jobs/counts").json()["processing"] == 2


def test_a_single_job_is_created_once_then_answered_as_it_is(client: TestClient):
    first = client.post("/queue_manager/jobs", json=job("m-1"))
    second = client.post("/queue_manager/jobs", json=job("m-1", last_status="queued"))

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second.json()["last_status"] == "processing"


def test_finishing_a_job_records_its_end_and_time_elapsed(client: TestClient):
    create(client, job("m-1", start_date=T0.isoformat()), job("m-2", start_date=T0.isoformat()))
    end = T0 + timedelta(seconds=2, milliseconds=500)

    finished, failed = update(
        client,
        {
            "message_id": "m-1",
            "last_status": "finished",
            "result": {"prediction": 358.1},
            "model_version": "demo:2",
            "end_date": end.isoformat(),
        },
        {"message_id": "m-2", "last_status": "failed", "message": "missing feature temp_B"},
    )

    assert finished["last_status"] == "finished"
    assert finished["result"] == {"prediction": 358.1}
    assert finished["model_version"] == "demo:2"
    assert finished["metadata"]["end_date"] == "2025-03-01T00:00:02.500000Z"
    assert finished["metadata"]["time_elapsed_sec"] == 2.5
    assert failed["message"] == "missing feature temp_B"
    assert failed["result"] is None
    # Without an end date, the end is now: long after T0
    assert failed["metadata"]["time_elapsed_sec"] > 3600
    assert failed["metadata"]["end_date"] is not None


def test_an_update_keeps_the_fields_it_does_not_name(client: TestClient):
    create(client, job("m-1"))
    client.patch(
        "/queue_manager/jobs/line_a/m-1", json={"last_status": "failed", "message": "boom"}
    )

    response = client.patch("/queue_manager/jobs/line_a/m-1", json={"last_status": "finished"})

    assert response.status_code == 200
    assert response.json()["message"] == "boom"
    assert response.json()["last_status"] == "finished"


def test_unknown_jobs_fail_the_whole_update_by_name(client: TestClient):
    create(client, job("m-1"))

    batch = client.patch(
        "/queue_manager/jobs/batch",
        json={
            "jobs": [
                {"service": "line_a", "message_id": "m-1", "last_status": "finished"},
                {"service": "line_a", "message_id": "ghost-1", "last_status": "finished"},
                {"service": "line_a", "message_id": "ghost-2", "last_status": "failed"},
            ]
        },
    )
    single = client.patch("/queue_manager/jobs/line_a/ghost-3", json={"last_status": "finished"})

    assert batch.status_code == single.status_code == 404
    assert "line_a/ghost-1, line_a/ghost-2" in batch.json()["detail"]
    assert "ghost-3" in single.json()["detail"]
    assert client.get("/queue_manager/jobs/line_a/m-1").json()["last_status"] == "processing"
    assert client.get("/queue_manager/jobs/line_a/ghost-1").status_code == 404


def test_jobs_are_listed_newest_first_and_filtered(client: TestClient):
    create(
        client,
        *[job(f"a-{i}", start_date=(T0 + timedelta(minutes=i)).isoformat()) for i in range(5)],
        *[
            job(f"b-{i}", service="line_b", start_date=(T0 + timedelta(minutes=i)).isoformat())
            for i in range(3)
        ],
    )
    update(client, {"message_id": "a-1", "last_status": "failed"})

    def ids(**params: Any) -> list[str]:
        response = client.get("/queue_manager/jobs", params=params)
        assert response.status_code == 200, response.text
        return [j["message_id"] for j in response.json()]

    assert ids(service="line_a") == ["a-4", "a-3", "a-2", "a-1", "a-0"]
    assert ids(service="line_b", limit=2) == ["b-2", "b-1"]
    assert ids(status="failed") == ["a-1"]
    window = {
        "since": (T0 + timedelta(minutes=1)).isoformat(),
        "until": (T0 + timedelta(minutes=3)).isoformat(),
    }
    assert ids(service="line_a", **window) == ["a-2", "a-1"]
    assert len(ids()) == 8


def test_counts_name_every_status_even_when_zero(client: TestClient):
    assert client.get("/queue_manager/jobs/counts").json() == {
        "queued": 0,
        "processing": 0,
        "finished": 0,
        "failed": 0,
    }
    create(
        client,
        job("a-0", start_date=T0.isoformat()),
        job("a-1", start_date=(T0 + timedelta(hours=1)).isoformat(), last_status="queued"),
        job("b-0", service="line_b"),
    )
    update(client, {"message_id": "a-0", "last_status": "finished"})

    every = client.get("/queue_manager/jobs/counts").json()
    line_a = client.get("/queue_manager/jobs/counts", params={"service": "line_a"}).json()
    recent_a = client.get(
        "/queue_manager/jobs/counts",
        params={"service": "line_a", "since": (T0 + timedelta(minutes=30)).isoformat()},
    ).json()

    assert every == {"queued": 1, "processing": 1, "finished": 1, "failed": 0}
    assert line_a == {"queued": 1, "processing": 0, "finished": 1, "failed": 0}
    assert recent_a == {"queued": 1, "processing": 0, "finished": 0, "failed": 0}


def test_a_thousand_jobs_go_in_with_one_request_and_more_are_refused(client: TestClient):
    full = create(client, *[job(f"m-{i}") for i in range(1000)])
    over = client.post(
        "/queue_manager/jobs/batch", json={"jobs": [job(f"n-{i}") for i in range(1001)]}
    )

    assert len(full) == 1000
    assert over.status_code == 413
    assert "1001 jobs is over the limit of 1000" in over.json()["detail"]
    assert client.get("/queue_manager/jobs/counts").json()["processing"] == 1000


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_an_empty_batch_is_refused(client: TestClient, method: str):
    response = client.request(method, "/queue_manager/jobs/batch", json={"jobs": []})
    assert response.status_code == 422
    assert "empty batch" in response.json()["detail"]


def test_one_message_in_two_services_has_a_job_in_each(client: TestClient):
    # Given a message routed to a service and to its shadow
    create(client, job("m-1"))
    update(client, {"message_id": "m-1", "last_status": "finished", "result": 1.0})

    # When the shadow service records its job for the same message
    shadow = create(client, job("m-1", service="line_a_shadow"))[0]

    # Then it is a new job of its own, and the first one is untouched
    assert shadow["service"] == "line_a_shadow"
    assert shadow["last_status"] == "processing"
    assert client.get("/queue_manager/jobs/line_a/m-1").json()["last_status"] == "finished"
    assert client.get("/queue_manager/jobs/line_a_shadow/m-1").json()["last_status"] == "processing"


def test_every_job_is_kept(settings, auth):
    # Given queue_manager, when 1,500 jobs (more than a batch holds) arrive, oldest first
    with TestClient(create_app(settings), headers=auth) as client:
        for start in range(0, 1500, 750):
            create(
                client,
                *(
                    job(f"n-{i}", start_date=(T0 + timedelta(seconds=i)).isoformat())
                    for i in range(start, start + 750)
                ),
            )

        # Then none was dropped, and the newest come first
        kept = client.get("/queue_manager/jobs", params={"limit": 10_000}).json()
        assert len(kept) == 1500
        assert kept[0]["message_id"] == "n-1499" and kept[-1]["message_id"] == "n-0"
        counts = client.get("/queue_manager/jobs/counts").json()
        assert counts["processing"] == 1500
