"""retraining_api counts and times its requests at an open /metrics, by route template
and status."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from retraining_api.app import create_app
from retraining_api.settings import load_settings
from tests.metrics_helpers import check_requests_are_counted


@pytest.fixture
def client(postgres_dsn, auth, tmp_path) -> Iterator[TestClient]:
    """A retraining_api on the test database, its lifespan not run: no job processes
    are started (nor needed) to read jobs."""
    app = create_app(dataclasses.replace(load_settings(), artifacts_dir=tmp_path))
    yield TestClient(app, headers=auth)
    app.state.retraining.db.close()


def test_requests_move_the_counters_of_their_route_and_status(client):
    assert client.get("/health").status_code == 200  # prepares the tables
    check_requests_are_counted(
        client,
        "retraining_api",
        listed="/retraining_api/jobs",
        one=("/retraining_api/jobs/{job_id}", "/retraining_api/jobs/999999999"),
    )
