"""A queue_manager app on a fresh in-memory store, the ml_data_api its uploads are
checked against (serving the use cases the tests name), and a look at the real RabbitMQ."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.exceptions import ChannelNotFoundEntity
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from gits_common.amqp import (
    ModelChanged,
    declare_model_events_exchange,
    declare_sensor_exchange,
    service_queues,
)
from gits_common.schemas import Column, ColumnType, Task, UseCase
from ml_data_api.app import create_app as create_ml_data_api
from ml_data_api.settings import load_settings as ml_data_api_settings
from queue_manager.app import create_app
from queue_manager.sandbox import Sandbox
from queue_manager.settings import Settings, load_settings
from tests.conftest import QM_BACKENDS, LiveServer, private_store
from tests.model_files import model_bytes

FEATURES = ["temp_A", "temp_B", "humidity"]
# What the tests' model files import when loaded (tests/model_files.py).
TEST_PRELOAD = ("sklearn.pipeline", "sklearn.linear_model")
# The regression use cases the tests upload models for, all with FEATURES and a target.
USE_CASES = ("sensors", "line_1", "line_2", "other_line")
CLASSIFIED = UseCase(
    name="sorted_parts",
    task=Task.classification,
    features=[Column(name=f) for f in FEATURES],
    target=Column(name="good", type=ColumnType.int),
)


def sensor_use_case(name: str) -> UseCase:
    """A regression use case over FEATURES, as the tests' uploads expect."""
    return UseCase(
        name=name,
        task=Task.regression,
        features=[Column(name=f) for f in FEATURES],
        target=Column(name="quality"),
    )


@pytest.fixture(scope="session")
def ml_data_api_url(postgres_dsn: str) -> Iterator[str]:
    """An ml_data_api on the test database, with the tests' use cases registered."""
    with LiveServer(create_ml_data_api(ml_data_api_settings())) as server:
        with httpx.Client(base_url=server.url, headers=_auth()) as http:
            for use_case in [*map(sensor_use_case, USE_CASES), CLASSIFIED]:
                body = use_case.model_dump(mode="json")
                http.post("/ml_data_api/use_cases", json=body).raise_for_status()
        yield server.url


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['GITS_ADMIN_TOKEN']}"}


@pytest.fixture(params=QM_BACKENDS)
def settings(request: pytest.FixtureRequest, ml_data_api_url: str) -> Settings:
    """queue_manager settings on a private, empty store of each backend available here
    (every test of queue_manager is a test of each store), whatever .env says, checking
    uploads against the test ml_data_api; the sandbox starts on the first upload."""
    return dataclasses.replace(
        private_store(load_settings(), request.param),
        ml_data_api_url=ml_data_api_url,
        sandbox_preload=(),
    )


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One model sandbox for the session's apps, warmed with what the tests' models need."""
    shared = Sandbox(time_limit=30, memory_bytes=1024 * 2**20, preload=TEST_PRELOAD)
    yield shared
    shared.close()


@pytest.fixture
def app(settings: Settings, sandbox: Sandbox) -> FastAPI:
    """A fresh queue_manager application."""
    return create_app(settings, sandbox=sandbox)


def unique(prefix: str) -> str:
    """A name no other test (and no earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


_seeds = itertools.count(1)


def model(seed: int | None = None, **options: Any) -> bytes:
    """A real model file over FEATURES; each call without a seed gives other bytes."""
    return model_bytes(FEATURES, seed=next(_seeds) if seed is None else seed, **options)


def upload(client: TestClient, name: str, content: bytes | None = None, **form: Any) -> Response:
    """POST a model file (a fresh real one unless given) with a valid form; `form`
    overrides or adds fields."""
    content = model() if content is None else content
    fields = {
        "name": name,
        "use_case": "sensors",
        "task": "regression",
        "features": json.dumps(FEATURES),
        **form,
    }
    given = {key: value for key, value in fields.items() if value is not None}
    return client.post(
        "/queue_manager/algorithms", data=given, files={"file": ("model.pkl", content)}
    )


def bind(
    client: TestClient, service: str, algorithm: str, version: int | str = "latest", **body: Any
) -> Response:
    """PUT a service binding."""
    return client.put(
        f"/queue_manager/services/{service}",
        json={
            "routing_key": f"{service}.data",
            "algorithm_name": algorithm,
            "algorithm_version": version,
            **body,
        },
    )


class Broker:
    """A synchronous look at the real RabbitMQ, and the cleanup of what tests left there."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._queues: list[str] = []

    def service_name(self) -> str:
        """A unique service name whose queues are deleted after the test."""
        name = unique("qm-test")
        self._queues += list(service_queues(name))
        return name

    def listen(self, service: str) -> str:
        """A queue that receives the model-change events routed to `service`."""
        queue = f"{service}.test-listener"
        self._queues.append(queue)

        async def declare(channel: aio_pika.abc.AbstractChannel) -> None:
            exchange = await declare_model_events_exchange(channel)
            declared = await channel.declare_queue(queue, durable=False)
            await declared.bind(exchange, routing_key=service)

        self._run(declare)
        return queue

    def events(self, queue: str, *, wait: float = 2.0) -> list[ModelChanged]:
        """Every event waiting in `queue`, waiting up to `wait` seconds for the first."""

        async def drain(channel: aio_pika.abc.AbstractChannel) -> list[ModelChanged]:
            declared = await channel.get_queue(queue)
            out: list[ModelChanged] = []
            while message := await declared.get(no_ack=True, fail=False):
                assert message.content_type == "application/json"
                assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
                out.append(ModelChanged.model_validate_json(message.body))
            return out

        deadline = time.monotonic() + wait
        while not (found := self._run(drain)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return found

    def queue_exists(self, name: str) -> bool:
        """Whether a passive declare of the queue succeeds."""

        async def passive(channel: aio_pika.abc.AbstractChannel) -> bool:
            try:
                await channel.declare_queue(name, passive=True)
            except ChannelNotFoundEntity:
                return False
            return True

        return self._run(passive)

    def publish(self, routing_key: str, bodies: list[bytes]) -> None:
        """Publish persistent, confirmed messages to the sensor exchange."""

        async def send(channel: aio_pika.abc.AbstractChannel) -> None:
            exchange = await declare_sensor_exchange(channel)
            for body in bodies:
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await exchange.publish(message, routing_key=routing_key)

        self._run(send, confirms=True)

    def depth(self, queue: str, *, settle: float = 1.0) -> int:
        """Messages ready in a queue, once what was just published has settled."""
        time.sleep(settle)

        async def count(channel: aio_pika.abc.AbstractChannel) -> int:
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)

        return int(self._run(count))

    def cleanup(self) -> None:
        """Delete every queue the test made or had queue_manager make."""

        async def delete(channel: aio_pika.abc.AbstractChannel) -> None:
            for queue in self._queues:
                await channel.queue_delete(queue)

        self._run(delete)

    def _run(self, work: Any, *, confirms: bool = False) -> Any:
        async def main() -> Any:
            connection = await aio_pika.connect(self.url, timeout=5)
            async with connection:
                return await work(await connection.channel(publisher_confirms=confirms))

        return asyncio.run(main())


@pytest.fixture
def broker(rabbitmq_url: str) -> Iterator[Broker]:
    """The real broker; queues of the test's services are deleted afterwards."""
    look = Broker(rabbitmq_url)
    yield look
    look.cleanup()
