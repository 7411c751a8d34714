"""Bad input answers 4xx with a readable reason, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.queue_manager.conftest import bind, upload

BAD_FORMS = {
    "unknown task": ({"task": "clustering"}, "body.task"),
    "features not JSON": ({"features": "temp_A, temp_B"}, "body.features: Invalid JSON"),
    "features not a list": ({"features": json.dumps({"a": 1})}, "body.features"),
    "no features": ({"features": "[]"}, "at least 1 item"),
    "features not names": ({"features": "[1, 2]"}, "body.features.0"),
    "malformed checksum": ({"sha256": "abc"}, "body.sha256"),
    "empty use case": ({"use_case": ""}, "body.use_case"),
}


@pytest.mark.parametrize("label", BAD_FORMS)
def test_a_bad_upload_form_is_refused_with_a_reason(client: TestClient, label: str):
    form, reason = BAD_FORMS[label]
    response = upload(client, "demo", b"model", **form)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert client.get("/queue_manager/algorithms").json() == []


def test_an_upload_without_a_file_is_refused(client: TestClient):
    response = client.post(
        "/queue_manager/algorithms",
        data={"name": "demo", "use_case": "u", "task": "regression", "features": '["a"]'},
    )
    assert response.status_code == 422
    assert "body.file: Field required" in response.json()["detail"]


@pytest.mark.parametrize("version", ["0", "-1", "1.5", "newest", "01x"])
def test_a_bad_version_in_a_path_is_refused_with_a_reason(client: TestClient, version: str):
    upload(client, "demo", b"model")
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/queue_manager/algorithms/demo/versions/{version}")
        assert response.status_code == 422, (method, version)
        assert "a positive integer or 'latest'" in response.json()["detail"]
    assert len(client.get("/queue_manager/algorithms").json()) == 1


@pytest.mark.parametrize("name", ["-lead", "has space", "x" * 101, "semi;colon"])
def test_a_bad_service_name_is_refused(client: TestClient, name: str):
    upload(client, "demo", b"model")
    response = bind(client, name, "demo")
    assert response.status_code == 422
    assert "path.name" in response.json()["detail"]
    assert client.get("/queue_manager/services").json() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"algorithm_name": "demo"}, "body.routing_key: Field required"),
        ({"routing_key": "r"}, "body.algorithm_name: Field required"),
        ({"routing_key": "r", "algorithm_name": "demo", "algorithm_version": 0}, "positive"),
        ({"routing_key": "r", "algorithm_name": "demo", "algorithm_version": "new"}, "positive"),
        ({"routing_key": "", "algorithm_name": "demo"}, "body.routing_key"),
    ],
)
def test_a_bad_binding_is_refused_with_a_reason(client: TestClient, body, reason):
    upload(client, "demo", b"model")
    response = client.put("/queue_manager/services/svc", json=body)
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    assert client.get("/queue_manager/services").json() == []


def test_bad_jobs_are_refused_with_a_reason(client: TestClient):
    good = {"message_id": "m", "service": "s", "payload": {}, "routing_key": "r", "worker": "w"}
    cases = [
        ({**good, "payload": [1, 2]}, "body.jobs.0.payload"),
        ({**good, "last_status": "done"}, "body.jobs.0.last_status"),
        ({**good, "start_date": "yesterday"}, "body.jobs.0.start_date"),
        ({k: v for k, v in good.items() if k != "service"}, "body.jobs.0.service: Field"),
    ]
    for job, reason in cases:
        response = client.post("/queue_manager/jobs/batch", json={"jobs": [job]})
        assert response.status_code == 422
        assert reason in response.json()["detail"]
    assert client.get("/queue_manager/jobs").json() == []


def test_bad_job_queries_are_refused(client: TestClient):
    too_many = client.get("/queue_manager/jobs", params={"limit": 10_001})
    bad_status = client.get("/queue_manager/jobs", params={"status": "done"})
    bad_since = client.get("/queue_manager/jobs/counts", params={"since": "last week"})
    assert too_many.status_code == bad_status.status_code == bad_since.status_code == 422
    assert "query.limit" in too_many.json()["detail"]
    assert "query.status" in bad_status.json()["detail"]
    assert "query.since" in bad_since.json()["detail"]
