"""Bad input answers 4xx with a readable reason, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.queue_manager.conftest import bind, model, upload

BAD_FORMS = {
    "unknown task": ({"task": "clustering"}, "body.task"),
    "features not JSON": ({"features": "temp_A, temp_B"}, "body.features: Invalid JSON"),
    "features not a list": ({"features": json.dumps({"a": 1})}, "body.features"),
    "no features": ({"features": "[]"}, "model check 'features' failed"),
    "features not names": ({"features": "[1, 2]"}, "body.features.0"),
    "malformed checksum": ({"sha256": "abc"}, "body.sha256"),
    "empty use case": ({"use_case": ""}, "body.use_case"),
}


@pytest.mark.parametrize("label", BAD_FORMS)
def test_a_bad_upload_form_is_refused_with_a_reason(client: TestClient, label: str):
    form, reason = BAD_FORMS[label]
    response = upload(client, "demo", None, **form)
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
    upload(client, "demo")
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/queue_manager/algorithms/demo/versions/{version}")
        assert response.status_code == 422, (method, version)
        assert "a positive integer or 'latest'" in response.json()["detail"]
    assert len(client.get("/queue_manager/algorithms").json()) == 1


@pytest.mark.parametrize("name", ["-lead", "has space", "x" * 101, "semi;colon"])
def test_a_bad_service_name_is_refused(client: TestClient, name: str):
    upload(client, "demo")
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
    upload(client, "demo")
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


@pytest.mark.parametrize(
    ("routing_key", "reason"),
    [
        ("é" * 200, "255 bytes"),  # 200 characters, 400 bytes (aiormq PR#141)
        ("a\x00b", "control characters"),
        ("line\nbreak", "control characters"),
        ("", "at least 1 character"),
    ],
    ids=["400-bytes", "nul", "newline", "empty"],
)
def test_a_routing_key_amqp_cannot_carry_is_refused_and_nothing_stored(client, routing_key, reason):
    upload(client, "demo")
    response = bind(client, "svc-key", "demo", routing_key=routing_key)
    assert response.status_code == 422, response.text
    assert "routing_key" in response.json()["detail"] and reason in response.json()["detail"]
    assert client.get("/queue_manager/services/svc-key").status_code == 404


def test_a_description_with_nul_is_refused(client):
    response = upload(client, "demo", description="bad\x00text")
    assert response.status_code == 422
    assert "description" in response.json()["detail"]


def test_a_form_field_given_twice_is_refused_naming_it(client):
    fields = [
        ("name", "first"),
        ("name", "second"),
        ("use_case", "sensors"),
        ("task", "regression"),
    ]
    response = client.post(
        "/queue_manager/algorithms", data=fields, files={"file": ("m.pkl", model())}
    )
    assert response.status_code == 422
    assert "body.name" in response.json()["detail"]
    assert client.get("/queue_manager/algorithms").json() == []


JOB = {"message_id": "m-1", "service": "s", "payload": {}, "worker": "w"}
FINISHED = {**JOB, "last_status": "finished"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "PUT",
            "/queue_manager/jobs/batch",
            {"jobs": [{**FINISHED, "message": "a\x00b"}]},
            "message",
        ),
        (
            "PUT",
            "/queue_manager/jobs/batch",
            {"jobs": [{**FINISHED, "model_version": "a\x00b"}]},
            "model_version",
        ),
        (
            "PATCH",
            "/queue_manager/jobs/batch",
            {
                "jobs": [
                    {
                        "service": "s",
                        "message_id": "m-1",
                        "last_status": "failed",
                        "message": "\x00",
                    }
                ]
            },
            "message",
        ),
        (
            "PUT",
            "/queue_manager/jobs/batch",
            {
                "jobs": [
                    {
                        **FINISHED,
                        "start_date": "2025-01-02T00:00:00Z",
                        "end_date": "2025-01-01T00:00:00Z",
                    }
                ]
            },
            "end_date is before start_date",
        ),
        (
            "POST",
            "/queue_manager/jobs",
            {**JOB, "message_id": "\U00010000" * 512},
            "bytes in UTF-8",
        ),
    ],
    ids=["message-nul", "model-version-nul", "patch-nul", "end-before-start", "id-bytes"],
)
def test_job_values_no_store_can_hold_are_422_naming_them(client, method, path, body, field):
    # Every one of these answered 500 from the PostgreSQL store (NUL in text, an end
    # before the start, an id whose UTF-8 overflows the job key's index)
    client.post("/queue_manager/jobs", json=JOB)

    answer = client.request(method, path, json=body)

    assert answer.status_code == 422, answer.text
    assert field in answer.text


def test_an_end_before_the_stored_start_is_refused_and_the_job_kept(client):
    client.post("/queue_manager/jobs", json={**JOB, "start_date": "2025-06-01T00:00:00Z"})
    refused = client.patch(
        "/queue_manager/jobs/s/m-1",
        json={"last_status": "finished", "end_date": "1700-01-01T00:00:00Z"},
    )
    assert refused.status_code == 422, refused.text
    assert "before its start_date" in refused.json()["detail"]
    assert client.get("/queue_manager/jobs/s/m-1").json()["last_status"] == "processing"


@pytest.mark.parametrize(
    "path",
    [
        "/queue_manager/jobs?service=%00",
        "/queue_manager/jobs/counts?service=%00",
        "/queue_manager/algorithms?name=%00",
        "/queue_manager/algorithms?use_case=%00",
        "/queue_manager/get_services?service_name=%00",
    ],
)
def test_a_nul_in_a_query_is_422(client, path):
    assert client.get(path).status_code == 422
