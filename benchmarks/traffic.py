"""Benchmark traffic: sensor messages published to the platform's exchange, each with
the time it was published as its `timestamp` (the reading time the production row
keeps), so a row's latency is `inserted_at - timestamp` in the database."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq

from gits_common.amqp import (
    SENSOR_EXCHANGE,
    declare_sensor_exchange,
    declare_service_queue,
    service_queues,
)
from gits_common.settings import amqp_url

Properties = aiormq.spec.Basic.Properties

# Publishes awaiting their broker confirm at once: enough to keep the broker busy.
CONFIRM_WINDOW = 2000


def message_ids(prefix: str, count: int) -> list[str]:
    """`count` message ids: `<prefix>-000000`, `<prefix>-000001`, ..."""
    return [f"{prefix}-{i:06d}" for i in range(count)]


async def publish(
    routing_key: str,
    ids: Sequence[str],
    features: Sequence[dict[str, float]],
    *,
    rate: float | None = None,
) -> float:
    """Publish one persistent message per id (features taken round-robin from
    `features`), at `rate` messages/s or, without one, as fast as publisher confirms
    allow (CONFIRM_WINDOW in flight). Returns the seconds from the first publish to the
    last confirm; RuntimeError when a publish is refused or routed to no queue.

    Publishes through aiormq, the protocol layer under aio-pika: aio-pika's Message and
    Exchange objects held this process to about 1,000 messages/s, below what the
    platform drains (aiormq alone: about 6,800/s here)."""
    async with await aio_pika.connect(amqp_url()) as connection:
        await declare_sensor_exchange(await connection.channel())
    connection_ = await aiormq.connect(amqp_url())
    try:
        # on_return_raises: a message no queue is bound for is a failed publish
        channel = await connection_.channel(publisher_confirms=True, on_return_raises=True)
        slots = asyncio.Semaphore(CONFIRM_WINDOW)
        pending: set[asyncio.Future[Any]] = set()
        failures: list[BaseException] = []

        def settled(future: asyncio.Future[Any]) -> None:
            pending.discard(future)
            slots.release()
            if not future.cancelled() and future.exception() is not None:
                failures.append(future.exception())  # type: ignore[arg-type]

        started = time.perf_counter()
        for i, message_id in enumerate(ids):
            if rate is not None and (ahead := started + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(ahead)
            await slots.acquire()
            body, properties = _message(message_id, features[i % len(features)])
            future = asyncio.ensure_future(
                channel.basic_publish(
                    body,
                    exchange=SENSOR_EXCHANGE,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=True,
                )
            )
            pending.add(future)
            future.add_done_callback(settled)
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0)  # the last done callbacks
    finally:
        await connection_.close()
    if failures:
        raise RuntimeError(f"{len(failures)} publish(es) failed: {failures[0]!r}")
    return time.perf_counter() - started


def _message(message_id: str, features: dict[str, float]) -> tuple[bytes, Properties]:
    now = datetime.now(UTC)
    body = {"message_id": message_id, "timestamp": now.isoformat(), "features": features}
    properties = Properties(
        message_id=message_id,
        content_type="application/json",
        timestamp=now,
        delivery_mode=2,  # persistent
    )
    return json.dumps(body).encode(), properties


async def declare_queue(service: str, routing_key: str) -> None:
    """The service's queues, as the platform declares them, bound to `routing_key`."""
    async with await aio_pika.connect(amqp_url()) as connection:
        channel = await connection.channel()
        await declare_service_queue(channel, service=service, routing_key=routing_key)


async def queue_depths(service: str) -> dict[str, int]:
    """Messages ready in each of the service's queues (work, quarantine, dead letters);
    a queue that does not exist counts 0."""
    depths = {}
    async with await aio_pika.connect(amqp_url()) as connection:
        for name in service_queues(service):
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                depths[name] = queue.declaration_result.message_count or 0
            except aio_pika.exceptions.ChannelClosed:
                depths[name] = 0
    return depths


async def delete_queues(service: str) -> None:
    """Delete the service's queues (work, quarantine, dead letters)."""
    async with await aio_pika.connect(amqp_url()) as connection:
        channel = await connection.channel()
        for name in service_queues(service):
            await channel.queue_delete(name)
