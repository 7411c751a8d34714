"""retraining_api counts and times its requests at an open /metrics, by route template
and status."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from retraining_api.app import create_app
from retraining_api.settings import load_settings
from tests.metrics_helpers import moved, parse

REQUESTS = "gits_http_requests_total"


@pytest.fixture
def client(postgres_dsn, auth, tmp_path) -> Iterator[TestClient]:
    """A retraining_api on the test database, its lifespan not run: no job processes
    are started (nor needed) to read jobs."""
    app = create_app(dataclasses.replace(load_settings(), artifacts_dir=tmp_path))
    yield TestClient(app, headers=auth)
    app.state.retraining.db.close()


def test_requests_move_the_counters_of_their_route_and_status(client):
    assert client.get("/health").status_code == 200  # prepares the tables
    before = parse(client.get("/metrics", headers={"Authorization": ""}).text)

    client.get("/retraining_api/jobs")
    client.get("/retraining_api/jobs/999999999")
    client.get("/retraining_api/jobs", headers={"Authorization": "Bearer wrong"})

    after = parse(client.get("/metrics", headers={"Authorization": ""}).text)
    jobs = {"service": "retraining_api", "handler": "/retraining_api/jobs", "method": "GET"}
    assert moved(before, after, REQUESTS, **jobs, status="200") == 1
    assert moved(before, after, REQUESTS, **jobs, status="401") == 1
    one = {"service": "retraining_api", "handler": "/retraining_api/jobs/{job_id}"}
    assert moved(before, after, REQUESTS, **one, status="404") == 1
    assert moved(before, after, "gits_http_request_duration_seconds_count", **jobs) == 2
