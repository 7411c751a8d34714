"""Test settings are fixed here, before any service module reads the environment.

Tests that need PostgreSQL or RabbitMQ skip when the server is down, except under CI
(CI=true), where they fail: a silent skip there would be a false green.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gits_common.settings import amqp_url, config, postgres_settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

os.environ["POSTGRES_DB"] = f"{config('POSTGRES_DB', default='gits')}_test"
os.environ["GITS_API_TOKEN"] = "test-token-not-a-secret"
os.environ["LOG_LEVEL"] = "WARNING"


def need_server(what: str, error: Exception) -> None:
    """Skip locally, fail under CI, when a server the test needs is not reachable."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the test database, emptied once per session."""
    dsn = postgres_settings().dsn("gits-tests")
    try:
        conn = psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        need_server("PostgreSQL (run scripts/ensure-services.sh)", exc)
    with conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conn.close()
    return dsn


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """URL of the real RabbitMQ broker the tests use."""
    url = amqp_url()
    try:
        with socket.create_connection(
            (
                config("RABBITMQ_HOST", default="127.0.0.1"),
                config("RABBITMQ_PORT", default=5672, cast=int),
            ),
            timeout=2,
        ):
            pass
    except OSError as exc:
        need_server("RabbitMQ (run scripts/ensure-services.sh)", exc)
    return url


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[psycopg2.extensions.connection]:
    """An autocommit connection for looking at what the services stored."""
    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def api_token() -> str:
    """The bearer token the services under test expect."""
    return os.environ["GITS_API_TOKEN"]


@pytest.fixture
def auth(api_token: str) -> dict[str, str]:
    """Headers that pass the services' bearer auth."""
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def client(app: FastAPI, auth: dict[str, str]) -> Iterator[TestClient]:
    """A client of the package's `app` fixture that sends the bearer token."""
    with TestClient(app, headers=auth) as test_client:
        yield test_client


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """An ASGI app served by uvicorn on a real port, in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
