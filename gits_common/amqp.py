"""The RabbitMQ topology every GITS service agrees on, and the wire form of its events.

- `gits` (topic, durable): sensor messages, routed by the service's routing key.
- One quorum queue per worker service, named after the service and bound to its routing
  key, with an explicit delivery limit (RabbitMQ 3.10 has none by default) and a
  dead-letter exchange; `<service>.dead` collects what can never succeed.
- `gits.models` (topic, durable): model-change events, routed by service name, so the
  workers of a service swap models without a restart.

Declaring is idempotent: queue_manager declares a service's queue when the service is
bound (so messages wait for workers), workers declare it again when they start.
"""

from __future__ import annotations

import json
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from pydantic import BaseModel

SENSOR_EXCHANGE = "gits"
DEAD_LETTER_EXCHANGE = "gits.dead"
MODEL_EVENTS_EXCHANGE = "gits.models"
# Deliveries of one message before RabbitMQ dead-letters it: a message that crashes its
# worker every time must not loop forever.
DELIVERY_LIMIT = 5


def dead_letter_queue(service: str) -> str:
    """Name of the queue that keeps a service's dead-lettered messages."""
    return f"{service}.dead"


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
    """The service's work queue (and its dead-letter queue), bound to its routing key."""
    exchange = await declare_sensor_exchange(channel)
    dead_exchange = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dead = await channel.declare_queue(
        dead_letter_queue(service), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead.bind(dead_exchange, routing_key=dead_letter_queue(service))
    queue = await channel.declare_queue(
        service,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": dead_letter_queue(service),
        },
    )
    await queue.bind(exchange, routing_key=routing_key)
    return queue


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
