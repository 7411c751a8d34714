"""What RabbitMQ says of each service's queues: messages waiting, workers consuming, and
dead letters kept. A passive declare answers a queue's counts without creating or
changing it; one connection asks for every service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel
from aio_pika.exceptions import AMQPError

from django_admin.dashboards.deadletters import run_blocking
from gits_common import errors
from gits_common.amqp import dead_letter_queue, queue_counts

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class QueueState:
    """A service's queue as RabbitMQ holds it now; None where the queue does not exist."""

    waiting: int | None  # messages ready in the service's queue
    workers: int | None  # consumers of the service's queue: one per running worker
    dead_letters: int | None  # messages in its dead-letter queue


def queue_states(
    url: str, services: Iterable[str], *, timeout: float = TIMEOUT_SECONDS
) -> dict[str, QueueState]:
    """Each service's `QueueState`, asked over one connection within `timeout` seconds;
    `Unavailable` when RabbitMQ cannot be reached or does not answer in time."""
    try:
        return run_blocking(asyncio.wait_for(_states(url, list(services)), timeout))
    except (AMQPError, OSError, TimeoutError) as exc:
        raise errors.Unavailable(f"RabbitMQ is not answering ({type(exc).__name__})") from exc


async def _states(url: str, services: list[str]) -> dict[str, QueueState]:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        found = {}
        for service in services:
            waiting, workers = await _counts(channel, service)
            dead, _ = await _counts(channel, dead_letter_queue(service))
            found[service] = QueueState(waiting, workers, dead)
        return found


async def _counts(channel: AbstractChannel, queue: str) -> tuple[int | None, int | None]:
    """(messages ready, consumers) of a queue, or (None, None) when there is none."""
    return await queue_counts(channel, queue) or (None, None)
