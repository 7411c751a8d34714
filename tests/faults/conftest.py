"""Faults that lose nothing (issue #11): the platform slice of tests/workers (ml_data_api
and queue_manager served in-process, worker replicas as real processes, the real
RabbitMQ and PostgreSQL) and the ways these tests hurt it:

- `kill_holding` SIGKILLs a worker after counting, while it is frozen, the deliveries
  RabbitMQ handed it that it had not settled: what the broker must deliver again;
- `Tap` sees every batch of predictions a worker sends to ml_data_api, and the answer,
  so that a test can count second writes, or kill the worker that sends a given message
  (a crash while scoring it, every time it is delivered);
- `rabbitmqctl` views of the broker's queues, consumers and channels.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import psutil
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gits_common.amqp import declare_sensor_exchange
from gits_common.settings import config
from ml_data_api.app import create_app as create_ml_data_api
from ml_data_api.settings import load_settings as ml_data_api_settings
from queue_manager.app import create_app as create_queue_manager
from queue_manager.settings import load_settings as queue_manager_settings
from tests.amqp_helpers import wait_until
from tests.conftest import LiveServer, private_store, rabbitmqctl
from tests.workers.conftest import (  # noqa: F401 (fixtures shared with the worker tests)
    Platform,
    apis,
    model_files,
    platform,
    queue_manager_port,
)

VHOST = config("RABBITMQ_VHOST", default="/")
PREDICTIONS = "/production/rows"  # the tail of the path workers store predictions at


# --- The platform slice, with a tap on ml_data_api ---


@dataclass
class Insert:
    """One batch of predictions a worker sent, and what ml_data_api answered."""

    client_port: int
    message_ids: list[str]
    status: int = 0
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def stored(self) -> bool:
        """ml_data_api answered that the batch is stored (201)."""
        return self.status == 201


class Tap:
    """What workers send to ml_data_api's production tables. Hooks run in the server's
    thread: `before` sees each batch before the app does and may drop it (the request is
    then answered 503 and nothing of it is stored, as if the worker had died first);
    `after` sees it once its answer is sent."""

    def __init__(self) -> None:
        self.inserts: list[Insert] = []
        self.before: Callable[[Insert], bool] | None = None
        self.after: Callable[[Insert], None] | None = None
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.inserts.clear()
        self.before = self.after = None

    def sent(self) -> Counter[str]:
        """How many times a worker sent each message's prediction and ml_data_api took it."""
        with self._lock:
            done = [i for i in self.inserts if i.stored]
        return Counter(m for i in done for m in i.message_ids)

    def skipped(self) -> int:
        """Predictions ml_data_api took as already stored: second writes made no-ops."""
        with self._lock:
            return sum(i.answer.get("skipped", 0) for i in self.inserts if i.stored)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The app, with every POST of production rows going through this tap."""

        async def tapped(scope: Scope, receive: Receive, send: Send) -> None:
            wanted = scope["type"] == "http" and scope["method"] == "POST"
            if not (wanted and scope["path"].endswith(PREDICTIONS)):
                await app(scope, receive, send)
                return
            body = await _whole_body(receive)
            try:
                rows = json.loads(body)["rows"]
                ids = [str(row.get("message_id")) for row in rows]
            except (ValueError, KeyError, TypeError, AttributeError):
                ids = []
            insert = Insert(scope["client"][1] if scope.get("client") else 0, ids)
            with self._lock:
                self.inserts.append(insert)
            if self.before is not None and self.before(insert):
                insert.status = 503
                await _answer(send, 503, b'{"detail": "dropped by the test"}')
                return
            await app(scope, _replay(body, receive), _recording(send, insert))
            if self.after is not None:
                self.after(insert)

        return tapped


async def _whole_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _recording(send: Send, insert: Insert) -> Send:
    parts: list[bytes] = []

    async def recording(message: Message) -> None:
        if message["type"] == "http.response.start":
            insert.status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if not message.get("more_body", False) and insert.stored:
                insert.answer = json.loads(b"".join(parts))
        await send(message)

    return recording


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def tap() -> Tap:
    """The tap on the module's ml_data_api."""
    return Tap()


@pytest.fixture(autouse=True)
def _fresh_tap(tap: Tap) -> Iterator[None]:
    tap.clear()
    yield
    tap.clear()


@pytest.fixture(scope="module")
def ml_data_server(postgres_dsn: str, tap: Tap) -> Iterator[LiveServer]:
    """ml_data_api served on a free port, its prediction writes seen by the tap."""
    app = create_ml_data_api(ml_data_api_settings())
    app.add_middleware(_TapMiddleware, tap=tap)
    with LiveServer(app) as server:
        yield server


class _TapMiddleware:
    def __init__(self, app: ASGIApp, tap: Tap) -> None:
        self.app = tap.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def queue_manager_app(rabbitmq_url: str, ml_data_server: LiveServer) -> FastAPI:
    """queue_manager as the worker tests serve it, on a store of its own."""
    settings = dataclasses.replace(
        private_store(queue_manager_settings()), ml_data_api_url=ml_data_server.url
    )
    return create_queue_manager(settings)


# --- Processes ---


def pid_of_client(port: int, processes: list[Any]) -> int | None:
    """Which of these processes owns the local TCP port (a worker's side of a request)."""
    for process in processes:
        try:
            found = psutil.Process(process.pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.laddr and c.laddr.port == port for c in found):
            return int(process.pid)
    return None


def kill_holding(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL a worker; how many deliveries it held unsettled when it died (counted on
    the broker while the worker is frozen, so that none is settled meanwhile)."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGSTOP)
    time.sleep(0.5)  # acks already on the wire reach the broker
    held = held_by(process.pid)
    process.kill()
    process.wait()
    return held


@contextmanager
def frozen(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """SIGSTOP the running ones of these processes for the block, SIGCONT them after: a
    stream held where it is, so that a fault lands mid-stream however fast workers are."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for process in running:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)


# --- The broker ---


def listed(*args: str) -> list[dict[str, Any]]:
    """A rabbitmqctl listing as JSON rows."""
    out = rabbitmqctl(*args, "--formatter", "json")
    return list(json.loads(out)) if out.strip() else []


def queue_state(queue: str) -> dict[str, int]:
    """messages (ready + unacked), messages_unacknowledged and consumers of a queue. A
    quorum queue's counts are its metrics as of its last tick (up to 5 s old): wait for
    them, never read them once."""
    fields = ["name", "messages", "messages_unacknowledged", "consumers"]
    for row in listed("list_queues", "-p", VHOST, *fields):
        if row["name"] == queue:
            return {k: int(row[k]) for k in fields[1:]}
    raise AssertionError(f"no queue {queue} in vhost {VHOST}")


def consumers(queue: str) -> int:
    """Consumers of a queue now."""
    return queue_state(queue)["consumers"]


def wait_for_consumers(queue: str, n: int, timeout: float = 120) -> None:
    """Wait until n consumers take from the queue: workers that have started, so that
    none of them joins a stream the others have already finished."""
    wait_until(lambda: consumers(queue) == n, timeout=timeout, every=0.2)


def held_by(pid: int) -> int:
    """Deliveries the broker has handed the worker with this pid and not had settled."""
    name = f"worker {socket.gethostname()}-{pid}"
    connections = {
        row["pid"]
        for row in listed("list_connections", "pid", "client_properties")
        if ["connection_name", "longstr", name] in row["client_properties"]
    }
    assert connections, f"the broker has no connection of {name}"
    return sum(
        int(row["messages_unacknowledged"])
        for row in listed("list_channels", "connection", "messages_unacknowledged")
        if row["connection"] in connections
    )


def publish_many(url: str, routing_key: str, bodies: list[dict[str, Any]]) -> None:
    """Publish persistent messages to the sensor exchange, their confirms awaited 500 at
    a time (tests/amqp_helpers.publish awaits each: too slow for ten thousand)."""

    async def go() -> None:
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await declare_sensor_exchange(channel)
            for at in range(0, len(bodies), 500):
                await asyncio.gather(
                    *(
                        exchange.publish(
                            aio_pika.Message(
                                json.dumps(body).encode(),
                                message_id=body["message_id"],
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            ),
                            routing_key=routing_key,
                        )
                        for body in bodies[at : at + 500]
                    )
                )

    asyncio.run(go())


# --- What the platform stored ---


def stored(pg: Any, of: Platform) -> tuple[int, int]:
    """(rows, distinct message ids) of the platform's production table."""
    with pg.cursor() as cur:
        table = f"{of.use_case.name}_production"
        cur.execute(f'SELECT count(*), count(DISTINCT message_id) FROM "{table}"')
        rows, distinct = cur.fetchone()
    return int(rows), int(distinct)


def stored_ids(pg: Any, of: Platform) -> set[str]:
    """The message ids of the platform's production table."""
    return {row[0] for row in of.production(pg)}
