"""Test settings are fixed here, before any service module reads the environment.

Tests that need PostgreSQL or RabbitMQ skip when the server is down, except under CI
(CI=true), where they fail: a silent skip there would be a false green.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator

import aio_pika
import psycopg2
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg2 import sql

from gits_common.settings import amqp_url, config, postgres_settings
from queue_manager.settings import Settings as QueueManagerSettings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

os.environ["POSTGRES_DB"] = f"{config('POSTGRES_DB', default='gits')}_test"
# One token per role, as .env has them (each at least 32 characters).
TOKENS = {
    "admin": "test-admin-token-not-a-secret-0123456789",
    "runtime": "test-runtime-token-not-a-secret-012345678",
    "read": "test-read-token-not-a-secret-0123456789ab",
}
for _role, _token in TOKENS.items():
    os.environ[f"GITS_{_role.upper()}_TOKEN"] = _token
os.environ["LOG_LEVEL"] = "WARNING"
# No metrics servers on the ports .env gives `make run` (one may be running beside the
# tests); a test that scrapes one sets a free port.
for _setting in ("WORKER_METRICS_PORT", "DATA_SOURCE_METRICS_PORT", "GROUND_TRUTH_METRICS_PORT"):
    os.environ[_setting] = "0"


# One test run at a time on a machine: runs share the test database (a run empties it
# when it starts) and the broker (a run deletes the test queues earlier runs left). A
# second run waits here for the first to end; the lock goes with the process (a POSIX
# record lock: a child the run forks does not inherit it, so none can outlive it holding it).
_RUN_LOCK = open(os.path.join(tempfile.gettempdir(), "gits-tests.lock"), "w")  # noqa: SIM115
try:
    fcntl.lockf(_RUN_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:  # EAGAIN or EACCES: another run holds it
    print("another GITS test run is under way on this machine; waiting for it to end")
    fcntl.lockf(_RUN_LOCK, fcntl.LOCK_EX)


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
        if _timescaledb_installed(cur):
            # Its functions live in public: dropping the schema would take the extension,
            # which only a superuser may create again.
            _drop_public_tables(cur)
        else:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        cur.execute(f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{QM_SCHEMA_PREFIX}%'")
        for (schema,) in cur.fetchall():
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()
    return dsn


def _drop_public_tables(cur: psycopg2.extensions.cursor) -> None:
    """Drop every table of the public schema (hypertables with their chunks, and what
    depends on them), and nothing else."""
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    for (table,) in cur.fetchall():
        cur.execute(sql.SQL("DROP TABLE IF EXISTS public.{} CASCADE").format(sql.Identifier(table)))


def _timescaledb_installed(cur: psycopg2.extensions.cursor) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    (installed,) = cur.fetchone() or (False,)
    return bool(installed)


@pytest.fixture(scope="session")
def timescaledb(postgres_dsn: str) -> bool:
    """Whether the test database has the TimescaleDB extension, read where the services
    read it (pg_extension): use-case tables and the metric history are then hypertables,
    plain tables otherwise. The suite runs against either (a local PostgreSQL, or the
    compose stack's TimescaleDB) and checks the behaviour of the one it finds."""
    conn = psycopg2.connect(postgres_dsn)
    try:
        with conn.cursor() as cur:
            return _timescaledb_installed(cur)
    finally:
        conn.close()


# queue_manager stores the tests make: a schema each in the test database, or mongomock.
QM_SCHEMA_PREFIX = "qm_test_"
QM_BACKENDS = ("postgresql", "mongomock")


def private_store(
    settings: QueueManagerSettings, backend: str = "postgresql"
) -> QueueManagerSettings:
    """queue_manager settings with a store of their own, empty: a fresh schema in the
    test database (the embedded store users get), or an in-memory mongomock (the test
    double of the MongoDB path), whatever .env says."""
    if backend == "mongomock":
        return dataclasses.replace(settings, mongodb_url="mongomock://localhost", postgres=None)
    return dataclasses.replace(
        settings,
        mongodb_url="",
        postgres=postgres_settings(),
        postgres_schema=f"{QM_SCHEMA_PREFIX}{uuid.uuid4().hex[:12]}",
    )


# Queues of services that tests name with a random suffix (svc_hist_1a2b3c4d.dead, ...).
TEST_QUEUE = re.compile(
    r"^(svc|roles_service|qm-test)([-_][\w-]*)?[-_][0-9a-f]{8,12}(\.dead|\.quarantine)?$"
)


@pytest.fixture(scope="session", autouse=True)
def queues_left_behind_are_deleted() -> Iterator[None]:
    """Delete the RabbitMQ queues this run made (and test queues earlier runs left) when
    the run ends. Every service a test registers gets three quorum queues, and each
    quorum queue holds file handles in RabbitMQ 3.10's file_handle_cache (about 900 under
    the usual limit of 1,024 descriptors): some 330 left behind by earlier runs used them
    all, and the broker stopped answering new connections, which failed CI. Nothing is
    done where rabbitmqctl is absent (a broker on another host)."""
    before = _queue_names()
    yield
    after = _queue_names()
    if before is None or after is None:
        return
    made = after - before
    leftovers = {name for name in before if TEST_QUEUE.match(name)}
    _delete_queues(sorted(made | leftovers))


def rabbitmqctl(*args: str, timeout: float = 120) -> str:
    """rabbitmqctl's output (quiet); CalledProcessError when it fails."""
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=timeout
    ).stdout


def _queue_names() -> set[str] | None:
    """Every queue of the test vhost, by rabbitmqctl; None when it cannot tell."""
    if shutil.which("rabbitmqctl") is None:
        return None
    vhost = config("RABBITMQ_VHOST", default="/")
    try:
        listed = rabbitmqctl("list_queues", "-p", vhost, "name", "--no-table-headers")
    except (subprocess.SubprocessError, OSError):
        return None
    return {line.strip() for line in listed.splitlines() if line.strip()}


def _delete_queues(names: list[str]) -> None:
    """Delete queues over AMQP (one connection); a failure leaves them for the next run."""

    async def delete() -> None:
        connection = await aio_pika.connect(amqp_url(), timeout=10)
        async with connection:
            channel = await connection.channel()
            for name in names:
                await asyncio.wait_for(channel.queue_delete(name), 30)

    if names:
        try:
            asyncio.run(delete())
        except Exception as exc:
            print(f"could not delete {len(names)} test queue(s): {exc!r}")


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
    _no_resource_alarm()
    return url


def _no_resource_alarm() -> None:
    """Fail at once when the local RabbitMQ has a memory or disk alarm: it then blocks
    every publisher, and tests would wait on confirms that never come (RabbitMQ docs,
    "Memory and Disk Alarms")."""
    if (alarm := resource_alarm()) is not None:
        pytest.fail(alarm)


def resource_alarm() -> str | None:
    """What the local RabbitMQ's memory or disk alarm says, or None when it has none, or
    when rabbitmq-diagnostics is absent (a broker on another host)."""
    if shutil.which("rabbitmq-diagnostics") is None:
        return None
    check = subprocess.run(
        ["rabbitmq-diagnostics", "-q", "check_local_alarms"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check.returncode == 0:
        return None
    return (
        "RabbitMQ has a resource alarm and blocks publishers (free disk or memory, "
        f"see `rabbitmq-diagnostics alarms`): {(check.stdout + check.stderr).strip()}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """After a failing test, end the whole run when RabbitMQ has a resource alarm: every
    test that publishes would otherwise wait for its time limit in turn."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    uses_the_broker = "rabbitmq_url" in getattr(item, "fixturenames", ())
    if report.failed and uses_the_broker and (alarm := resource_alarm()) is not None:
        pytest.exit(alarm, returncode=3)


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[psycopg2.extensions.connection]:
    """An autocommit connection for looking at what the services stored."""
    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def api_token() -> str:
    """The admin role's bearer token: it may do everything the APIs offer."""
    return os.environ["GITS_ADMIN_TOKEN"]


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

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
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
