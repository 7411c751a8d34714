"""The RabbitMQ topology every GITS service agrees on, and the wire form of its events.

- `gits` (topic, durable): sensor messages, routed by the service's routing key.
- One quorum queue per worker service, named after the service and bound to its routing
  key, with an explicit delivery limit (RabbitMQ 3.10 has none by default) and a
  dead-letter exchange; `<service>.dead` collects what can never succeed.
- `<service>.quarantine`: where a worker moves a delivery RabbitMQ has made before (its
  worker died holding it). Workers take it one message at a time, so a message that
  kills its worker every time reaches the delivery limit alone: the neighbours that were
  in the dead worker's hands with it pass through quarantine once and are stored.
- `gits.models` (topic, durable): model-change events, routed by service name, so the
  workers of a service swap models without a restart.

Declaring is idempotent: queue_manager declares a service's queue when the service is
bound (so messages wait for workers), workers declare it again when they start.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed
from pydantic import BaseModel

log = logging.getLogger(__name__)

SENSOR_EXCHANGE = "gits"
DEAD_LETTER_EXCHANGE = "gits.dead"
MODEL_EVENTS_EXCHANGE = "gits.models"
# Deliveries of one message before RabbitMQ dead-letters it: a message that crashes its
# worker every time must not loop forever.
DELIVERY_LIMIT = 5
# Messages a service's queue holds at most: past it, the oldest are dead-lettered
# (RabbitMQ quorum queues' "drop-head" overflow, to the queue's dead-letter exchange), so
# a service whose workers are gone cannot fill the broker's disk.
MAX_QUEUE_LENGTH = 1_000_000
# The header a dead letter carries its reason in (workers publish dead letters themselves,
# so the reason travels with the message, not only on its job).
REASON_HEADER = "x-gits-reason"


def dead_letter_queue(service: str) -> str:
    """Name of the queue that keeps a service's dead-lettered messages."""
    return f"{service}.dead"


def quarantine_queue(service: str) -> str:
    """Name of the queue where a service's redelivered messages are handled one by one."""
    return f"{service}.quarantine"


def service_queues(service: str) -> tuple[str, str, str]:
    """Every queue of a service: work, quarantine, dead letters."""
    return service, quarantine_queue(service), dead_letter_queue(service)


async def declare_sensor_exchange(channel: AbstractChannel) -> AbstractExchange:
    """The exchange data sources publish sensor messages to."""
    return await channel.declare_exchange(
        SENSOR_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )


async def declare_model_events_exchange(channel: AbstractChannel) -> AbstractExchange:
    """The exchange queue_manager announces model changes on."""
    return await channel.declare_exchange(
        MODEL_EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )


async def declare_service_queue(
    channel: AbstractChannel, *, service: str, routing_key: str
) -> AbstractQueue:
    """The service's work queue bound to its routing key (and its quarantine and
    dead-letter queues)."""
    exchange = await declare_sensor_exchange(channel)
    dead_exchange = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dead = await channel.declare_queue(
        dead_letter_queue(service), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead.bind(dead_exchange, routing_key=dead_letter_queue(service))
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": dead_letter_queue(service),
        "x-max-length": MAX_QUEUE_LENGTH,
        "x-overflow": "drop-head",
    }
    await channel.declare_queue(quarantine_queue(service), durable=True, arguments=arguments)
    try:
        queue = await channel.declare_queue(service, durable=True, arguments=arguments)
    except ChannelPreconditionFailed:
        # A queue declared by an earlier GITS with other arguments keeps them (RabbitMQ
        # cannot change a queue's arguments): use it as it is, and say so.
        log.warning(
            "queue %s was declared earlier with other arguments; it is used as it is "
            "(delete it while it is empty to give it today's delivery and length limits)",
            service,
        )
        await channel.reopen()
        queue = await channel.declare_queue(service, passive=True)
    await queue.bind(exchange, routing_key=routing_key)
    return queue


async def existing_queue(channel: AbstractChannel, name: str) -> AbstractQueue | None:
    """The queue of that name as RabbitMQ holds it now (a passive declare: nothing is
    created or changed), or None when there is none. A failed passive declare closes the
    channel, which is opened again for the caller."""
    try:
        return await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        await channel.reopen()
        return None


async def queue_counts(channel: AbstractChannel, name: str) -> tuple[int, int] | None:
    """(messages ready, consumers) of the queue `name`, or None when there is none."""
    queue = await existing_queue(channel, name)
    if queue is None:
        return None
    result = queue.declaration_result
    return int(result.message_count or 0), int(result.consumer_count or 0)


class ModelChanged(BaseModel):
    """Announced when the model a service should use changes."""

    service: str
    algorithm: str
    version: int
    sha256: str


def encode(event: BaseModel) -> aio_pika.Message:
    """An event as a persistent JSON message."""
    return aio_pika.Message(
        event.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def decode_json(body: bytes) -> Any:
    """A message body parsed as JSON (raises ValueError when it is not)."""
    return json.loads(body)
