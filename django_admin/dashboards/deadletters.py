"""The depth of a dead-letter queue, read from RabbitMQ itself: a passive declare answers
how many messages a queue holds without creating or changing it. aio-pika is async and
Dash callbacks run in plain threads, so each look runs its own short event loop."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aio_pika
from aio_pika.exceptions import AMQPError

from gits_common import errors
from gits_common.amqp import queue_counts
from gits_common.registry import NAME_PATTERN

TIMEOUT_SECONDS = 5.0
T = TypeVar("T")


def dead_letter_count(url: str, queue: str, *, timeout: float = TIMEOUT_SECONDS) -> int | None:
    """Messages in `queue` (None when the queue does not exist, or when its name is no
    service's dead-letter queue: RabbitMQ takes names of at most 255 bytes, and a
    request may carry anything); `Unavailable` when RabbitMQ cannot be reached."""
    service, _, suffix = queue.rpartition(".")
    if suffix != "dead" or not re.fullmatch(NAME_PATTERN, service):
        return None
    try:
        return run_blocking(asyncio.wait_for(_count(url, queue), timeout))
    except (AMQPError, OSError, TimeoutError) as exc:
        raise errors.Unavailable(f"RabbitMQ unreachable: {exc!r}") from exc


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, in a thread of its own when
    this thread already runs an event loop (asyncio.run refuses to nest)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _count(url: str, queue: str) -> int | None:
    async with await aio_pika.connect(url) as connection:
        counts = await queue_counts(await connection.channel(), queue)
        return None if counts is None else counts[0]
