"""Every route needs the bearer token except / and /health; each app has its own store."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from queue_manager.app import create_app
from tests.queue_manager.conftest import upload

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
    assert len(routes) == 18
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
    assert health.json() == {"status": "ok", "mongodb": "in-memory (mongomock)"}
    assert root.json() == {"message": "This is the queue manager."}


def test_each_app_starts_with_an_empty_store_of_its_own(settings, auth):
    with (
        TestClient(create_app(settings), headers=auth) as first,
        TestClient(create_app(settings), headers=auth) as second,
    ):
        upload(first, "demo", b"1")
        first.post(
            "/queue_manager/jobs",
            json={
                "message_id": "m-1",
                "service": "s",
                "payload": {},
                "routing_key": "r",
                "worker": "w",
            },
        )

        assert second.get("/queue_manager/algorithms").json() == []
        assert second.get("/queue_manager/jobs").json() == []
        assert upload(second, "demo", b"2").json()["version"] == 1
        assert len(first.get("/queue_manager/algorithms").json()) == 1

    with TestClient(create_app(settings), headers=auth) as third:
        assert third.get("/queue_manager/algorithms").json() == []


def test_an_in_memory_store_is_announced_loudly_at_start(settings, caplog):
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("IN MEMORY" in w and "LOST" in w and "MONGODB_URL" in w for w in warnings)
