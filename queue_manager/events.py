"""Announcing model changes on RabbitMQ, so workers swap models without a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.exceptions import AMQPError

from gits_common.amqp import (
    ModelChanged,
    dead_letter_queue,
    declare_model_events_exchange,
    declare_sensor_exchange,
    declare_service_queue,
    encode,
    existing_queue,
    quarantine_queue,
    queue_counts,
)
from gits_common.errors import Conflict, Unavailable

log = logging.getLogger(__name__)

# OSError covers refused connections and timeouts; aiormq raises RuntimeError when a
# connection it has not yet noticed is dead gets used.
FAILURES = (AMQPError, OSError, RuntimeError)


class ModelEvents:
    """One RabbitMQ connection and publisher-confirmed channel, opened on first use and
    opened again after a failure. A broker out of reach is reported, never raised: the
    binding it announces is already saved."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def bind(self, *, routing_key: str, event: ModelChanged) -> bool:
        """Declare the service's queue, so messages wait for its workers, and announce its
        model. False when RabbitMQ could not take both."""

        async def declare_and_publish(channel: AbstractChannel) -> None:
            await declare_service_queue(channel, service=event.service, routing_key=routing_key)
            await _publish(channel, event)

        return await self._run(declare_and_publish, f"binding of service {event.service!r}")

    async def remove_queues(self, service: str, *, routing_key: str) -> dict[str, int]:
        """Delete a service's work queue, and its dead-letter queue when that is empty;
        `Conflict` naming the count when messages wait in the work queue (nothing is
        deleted then), `Unavailable` when RabbitMQ is out of reach. Returns what was
        kept: {"dead_letters": n} still in `<service>.dead`."""
        kept: dict[str, int] = {}

        async def remove(channel: AbstractChannel) -> None:
            # Quorum queues cannot be deleted "if empty": unbind first, so that nothing
            # arrives between the count and the delete, and bind again if some wait.
            exchange = await declare_sensor_exchange(channel)
            queue = await existing_queue(channel, service)
            if queue is not None:
                await queue.unbind(exchange, routing_key=routing_key)
            waiting = {
                name: depth
                for name in (service, quarantine_queue(service))
                if (depth := await _depth(channel, name))
            }
            if waiting:
                if queue is not None:
                    await queue.bind(exchange, routing_key=routing_key)
                counts = ", ".join(f"{n} in {name!r}" for name, n in waiting.items())
                raise Conflict(
                    f"{sum(waiting.values())} message(s) wait ({counts}); start its workers "
                    "to drain them (or purge the queue) before deleting the service"
                )
            for name in (service, quarantine_queue(service)):
                if await existing_queue(channel, name) is not None:
                    await channel.queue_delete(name)
            dead = await _depth(channel, dead_letter_queue(service))
            if dead:
                kept["dead_letters"] = dead
            elif dead is not None:
                await channel.queue_delete(dead_letter_queue(service))

        if not await self._run(remove, f"removal of {service!r}'s queues", raising=Conflict):
            raise Unavailable(f"RabbitMQ is out of reach: the queues of {service!r} were kept")
        return kept

    async def announce(self, event: ModelChanged) -> bool:
        """Announce a service's new model. False when RabbitMQ did not confirm it."""
        return await self._run(
            lambda channel: _publish(channel, event), f"model change of {event.service!r}"
        )

    async def close(self) -> None:
        """Close the connection, if one is open."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and asyncio.get_running_loop() is self._loop:
            try:
                await connection.close()
            except FAILURES as exc:
                log.debug("closing the RabbitMQ connection failed: %s", exc)

    async def _run(
        self,
        work: Callable[[AbstractChannel], Awaitable[None]],
        what: str,
        *,
        raising: type[Exception] | None = None,
    ) -> bool:
        """Run `work` on the channel; False when RabbitMQ failed. An exception of type
        `raising` from `work` itself is passed on."""
        async with self._guard():
            # A connection that was open may have died since its last use: then one more
            # try on a fresh one, before calling RabbitMQ unreachable.
            attempts = 2 if self._connection is not None else 1
            for attempt in range(1, attempts + 1):
                try:
                    async with asyncio.timeout(self._timeout):
                        await work(await self._open())
                    return True
                except Exception as exc:
                    if raising is not None and isinstance(exc, raising):
                        raise
                    if not isinstance(exc, FAILURES):
                        raise
                    await self.close()
                    if attempt == attempts:
                        log.warning("RabbitMQ did not take the %s: %r", what, exc)
            return False

    def _guard(self) -> asyncio.Lock:
        """A lock for the running event loop: one request opens the connection, others
        wait for it. A new loop (a restarted app) starts without the old connection."""
        loop = asyncio.get_running_loop()
        if self._lock is None or loop is not self._loop:
            self._lock, self._loop = asyncio.Lock(), loop
            self._connection = self._channel = None
        return self._lock

    async def _open(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            if self._connection is None or self._connection.is_closed:
                self._connection = await aio_pika.connect(self._url, timeout=self._timeout)
            self._channel = await self._connection.channel(publisher_confirms=True)
        return self._channel


async def _depth(channel: AbstractChannel, name: str) -> int | None:
    """Messages ready in a queue, or None when there is no such queue."""
    counts = await queue_counts(channel, name)
    return None if counts is None else counts[0]


async def _publish(channel: AbstractChannel, event: ModelChanged) -> None:
    exchange = await declare_model_events_exchange(channel)
    # Routed by service name: each service's workers hear only about their own model. Not
    # mandatory: a service without running workers is no failure.
    await exchange.publish(encode(event), routing_key=event.service, mandatory=False)
