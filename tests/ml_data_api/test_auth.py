"""Every route needs the bearer token; /health and the docs are open."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_routes_refuse_requests_without_the_right_token(app, sensors):
    with TestClient(app) as anonymous:
        paths = [
            ("GET", "/ml_data_api/use_cases"),
            ("GET", f"/ml_data_api/use_cases/{sensors.name}/counts"),
            ("POST", f"/ml_data_api/use_cases/{sensors.name}/training/rows"),
            ("POST", "/ml_data_api/insert_data/"),
        ]
        for method, path in paths:
            missing = anonymous.request(method, path, json={"rows": []})
            wrong = anonymous.request(
                method, path, json={"rows": []}, headers={"Authorization": "Bearer guess"}
            )
            assert missing.status_code == wrong.status_code == 401, path
            assert missing.headers["WWW-Authenticate"] == "Bearer"


def test_health_and_docs_are_open(app, timescaledb):
    with TestClient(app) as anonymous:
        health = anonymous.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "up", "timescaledb": timescaledb}
        assert anonymous.get("/docs").status_code == 200
        paths = anonymous.get("/openapi.json").json()["paths"]
        assert "/ml_data_api/use_cases/{name}/{table}/rows" in paths
        assert "/ml_data_api/insert_data/" in paths
