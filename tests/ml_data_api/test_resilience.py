"""Losing PostgreSQL answers 503; the pool heals by itself when it is back."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fastapi.testclient import TestClient

from ml_data_api.app import create_app
from tests.ml_data_api.conftest import sensor_rows
from tests.tcp_proxy import TcpProxy


def terminate_service_connections(pg) -> int:
    with pg.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'ml_data_api' AND datname = current_database()"
        )
        return int(cur.fetchone()[0])


def test_requests_succeed_after_every_pooled_connection_is_killed(client, sensors, pg):
    url = f"/ml_data_api/use_cases/{sensors.name}/production/rows"
    # Warm several pooled connections with concurrent-ish use, then kill them all.
    for i in range(3):
        client.post(url, json={"rows": sensor_rows(1, prefix=f"warm{i}", prediction=1.0)})
    assert terminate_service_connections(pg) >= 1
    time.sleep(0.2)

    response = client.post(url, json={"rows": sensor_rows(5, prefix="after")})

    assert response.status_code == 201, response.text
    assert response.json() == {"inserted": 5, "skipped": 0, "skipped_ids": []}
    assert client.get(f"/ml_data_api/use_cases/{sensors.name}/counts").json()["production"] == 8


@pytest.fixture
def proxy(settings):
    tcp = TcpProxy(settings.postgres.host, settings.postgres.port)
    tcp.restore()
    yield tcp
    tcp.cut()


def test_a_lost_database_answers_503_and_the_service_recovers(settings, auth, proxy, sensors):
    via_proxy = dataclasses.replace(
        settings, postgres=dataclasses.replace(settings.postgres, port=proxy.port)
    )
    url = f"/ml_data_api/use_cases/{sensors.name}/training/rows"
    with TestClient(create_app(via_proxy), headers=auth) as client:
        assert client.post(url, json={"rows": sensor_rows(2, prefix="before")}).status_code == 201

        proxy.cut()
        down = client.post(url, json={"rows": sensor_rows(2, prefix="during")})
        health = client.get("/health")

        assert down.status_code == 503
        assert "database unavailable" in down.json()["detail"]
        assert down.headers["Retry-After"]
        assert health.status_code == 503

        proxy.restore()
        up = client.post(url, json={"rows": sensor_rows(2, prefix="after")})

        assert up.status_code == 201, up.text
        assert client.get("/health").status_code == 200
        counts = client.get(f"/ml_data_api/use_cases/{sensors.name}/counts").json()
        assert counts["training"] == 4  # nothing written while the database was gone


def test_the_service_starts_while_the_database_is_down(settings, auth, proxy):
    proxy.cut()
    via_proxy = dataclasses.replace(
        settings, postgres=dataclasses.replace(settings.postgres, port=proxy.port)
    )
    with TestClient(create_app(via_proxy), headers=auth) as client:
        assert client.get("/ml_data_api/use_cases").status_code == 503
        proxy.restore()
        assert client.get("/ml_data_api/use_cases").status_code == 200
