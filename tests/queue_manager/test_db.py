"""A configured MongoDB that cannot be reached answers 503 with a reason, never a 500."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient

from queue_manager.app import create_app
from queue_manager.settings import load_settings
from tests.conftest import free_port, private_store
from tests.queue_manager.conftest import upload


def test_an_unreachable_mongodb_answers_503_and_health_says_so(settings, auth):
    # Given MONGODB_URL pointing where nothing listens (no MongoDB server exists here)
    gone = dataclasses.replace(
        settings,
        mongodb_url=f"mongodb://127.0.0.1:{free_port()}",
        mongodb_connect_timeout=0.2,
    )
    with TestClient(create_app(gone), headers=auth) as client:
        # When it is used
        jobs = client.get("/queue_manager/jobs")
        uploaded = upload(client, "demo")
        health = client.get("/health")

    # Then each request answers 503 with the reason, and the service kept running
    for response in (jobs, uploaded):
        assert response.status_code == 503, response.text
        assert response.json()["detail"].startswith("MongoDB unavailable")
        assert response.headers["Retry-After"]
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert health.json()["store"].startswith("unavailable: MongoDB unavailable")


def test_an_unreachable_postgresql_answers_503_and_health_says_so(auth):
    # Given the embedded store's PostgreSQL where nothing listens
    settings = private_store(load_settings())
    assert settings.postgres is not None
    gone = dataclasses.replace(
        settings, postgres=dataclasses.replace(settings.postgres, port=free_port())
    )
    with TestClient(create_app(gone), headers=auth) as client:
        # When it is used
        jobs = client.get("/queue_manager/jobs")
        health = client.get("/health")

    # Then each request answers 503 with the reason
    assert jobs.status_code == 503, jobs.text
    assert jobs.json()["detail"].startswith("database unavailable")
    assert health.status_code == 503
    assert health.json()["store"].startswith("unavailable: database unavailable")
