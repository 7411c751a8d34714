"""Small synchronous helpers for tests that talk to the real RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aio_pika

from gits_common.amqp import declare_sensor_exchange, service_queues


def publish(url: str, routing_key: str, bodies: list[bytes | dict[str, Any]]) -> None:
    """Publish persistent messages to the sensor exchange, each confirmed."""

    async def go() -> None:
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await declare_sensor_exchange(channel)
            for body in bodies:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                message_id = body.get("message_id") if isinstance(body, dict) else None
                await exchange.publish(
                    aio_pika.Message(
                        raw, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    ),
                    routing_key=routing_key,
                )

    asyncio.run(go())


def drain(
    url: str, queue: str, *, timeout: float = 2.0
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message now in a queue (acked, so they are removed)."""

    async def go() -> list[aio_pika.abc.AbstractIncomingMessage]:
        out = []
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel()
            q = await channel.get_queue(queue, ensure=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = await q.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.1)
                    continue
                await message.ack()
                out.append(message)
        return out

    return asyncio.run(go())


def delete_service_queues(url: str, service: str) -> None:
    """Remove a test service's work and dead-letter queues."""

    async def go() -> None:
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel()
            for name in service_queues(service):
                await channel.queue_delete(name)

    asyncio.run(go())


def wait_until(check: Callable[[], Any], *, timeout: float = 30.0, every: float = 0.2) -> Any:
    """The first truthy result of `check()`, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(every)
