"""Every route needs the bearer token except / and /health; each app has its own store."""

from __future__ import annotations

import dataclasses
import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from queue_manager.app import create_app
from queue_manager.settings import load_settings
from tests.conftest import private_store
from tests.queue_manager.conftest import bind, upload

OPEN = {"/", "/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every operation, with path parameters filled in."""
    paths = app.openapi()["paths"]
    filled = {"{name}": "demo", "{version}": "1", "{message_id}": "m-1"}
    out = []
    for path, operations in paths.items():
        concrete = path
        for placeholder, value in filled.items():
            concrete = concrete.replace(placeholder, value)
        out += [(method.upper(), concrete) for method in operations if path not in OPEN]
    return out


def test_every_route_refuses_requests_without_the_right_token(app: FastAPI):
    routes = every_route(app)
    families = {path.split("/")[2] for _, path in routes}
    assert {"algorithms", "services", "jobs", "get_services", "get_algorithms"} <= families
    assert len(routes) == 21
    with TestClient(app) as anonymous:
        for method, path in routes:
            missing = anonymous.request(method, path, json={})
            wrong = anonymous.request(
                method, path, json={}, headers={"Authorization": "Bearer guess"}
            )
            assert missing.status_code == wrong.status_code == 401, (method, path)
            assert missing.headers["WWW-Authenticate"] == "Bearer"


def test_health_and_the_greeting_are_open(app: FastAPI):
    with TestClient(app) as anonymous:
        health = anonymous.get("/health")
        root = anonymous.get("/")

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["store"] in ("postgresql", "mongomock (test double)")
    assert root.json() == {"message": "This is the queue manager."}


def test_the_embedded_store_keeps_everything_across_a_restart(ml_data_api_url, auth, broker):
    # Given queue_manager on its embedded store (PostgreSQL), with an algorithm, a
    # service bound to it and a job
    settings = dataclasses.replace(
        private_store(load_settings()), ml_data_api_url=ml_data_api_url, sandbox_preload=()
    )
    service = broker.service_name()
    job = {"message_id": "m-1", "service": service, "payload": {"x": 1}, "worker": "w"}
    with TestClient(create_app(settings), headers=auth) as first:
        upload(first, "demo")
        assert bind(first, service, "demo").status_code == 201
        assert first.post("/queue_manager/jobs", json=job).status_code == 201

    # When queue_manager starts again on the same store
    with TestClient(create_app(settings), headers=auth) as second:
        # Then it is all there, and the next upload is version 2
        assert [a["version"] for a in second.get("/queue_manager/algorithms").json()] == [1]
        assert second.get(f"/queue_manager/services/{service}").json()["resolved_version"] == 1
        assert second.get(f"/queue_manager/jobs/{service}/m-1").json()["payload"] == {"x": 1}
        assert upload(second, "demo").json()["version"] == 2


def test_the_store_in_use_is_logged_at_start(settings, caplog):
    with caplog.at_level(logging.INFO), TestClient(create_app(settings)):
        pass
    said = [r.getMessage() for r in caplog.records]
    assert any("algorithms, services and jobs are kept in" in line for line in said)
