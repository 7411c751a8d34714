"""A queue_manager app on a fresh in-memory store, and a look at the real RabbitMQ."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from aio_pika.exceptions import ChannelNotFoundEntity
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from gits_common.amqp import ModelChanged, declare_model_events_exchange
from queue_manager.app import create_app
from queue_manager.settings import Settings, load_settings

FEATURES = ["temp_A", "temp_B", "humidity"]


@pytest.fixture
def settings() -> Settings:
    """queue_manager settings on the in-memory store, whatever .env says."""
    return dataclasses.replace(load_settings(), mongodb_url="")


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """A fresh queue_manager application."""
    return create_app(settings)


def unique(prefix: str) -> str:
    """A name no other test (and no earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def upload(client: TestClient, name: str, content: bytes = b"model bytes", **form: Any) -> Response:
    """POST a model file with a valid form; `form` overrides or adds fields."""
    fields = {
        "name": name,
        "use_case": "sensors",
        "task": "regression",
        "features": json.dumps(FEATURES),
        **form,
    }
    return client.post(
        "/queue_manager/algorithms", data=fields, files={"file": ("model.pkl", content)}
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
        self._queues += [name, f"{name}.dead"]
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

    def cleanup(self) -> None:
        """Delete every queue the test made or had queue_manager make."""

        async def delete(channel: aio_pika.abc.AbstractChannel) -> None:
            for queue in self._queues:
                await channel.queue_delete(queue)

        self._run(delete)

    def _run(self, work: Any) -> Any:
        async def main() -> Any:
            connection = await aio_pika.connect(self.url, timeout=5)
            async with connection:
                return await work(await connection.channel())

        return asyncio.run(main())


@pytest.fixture
def broker(rabbitmq_url: str) -> Iterator[Broker]:
    """The real broker; queues of the test's services are deleted afterwards."""
    look = Broker(rabbitmq_url)
    yield look
    look.cleanup()
