"""The AMQP side of a worker: one connection at a time, rebuilt after any loss (a fresh
connection re-declares and re-consumes, which sidesteps aio-pika robust connections
coming back with zero consumers), batches taken from what is already queued, and each
delivery acked, dead-lettered or requeued as the handler decided."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from gits_common import errors
from gits_common.amqp import declare_model_events_exchange, declare_service_queue
from gits_common.clients import QueueManagerClient
from gits_common.lifecycle import pause
from workers.handler import Delivery, Handler, Outcome
from workers.models import ModelCache
from workers.settings import Settings

log = logging.getLogger(__name__)


class Consumer:
    """Consumes one service's queue until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        handler: Handler,
        models: ModelCache,
        queue_manager: QueueManagerClient,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.models = models
        self._qm = queue_manager
        self.handled = 0  # messages acked or dead-lettered by this process

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, consume, and reconnect with backoff whenever the broker goes away."""
        delay = 1.0
        while not stop.is_set():
            try:
                await self._session(stop)
                delay = 1.0
            except (aio_pika.exceptions.AMQPException, ConnectionError, OSError) as exc:
                log.warning("broker connection lost (%r); reconnecting in %.0fs", exc, delay)
                await pause(stop, delay)
                delay = min(delay * 2, 30.0)

    async def _session(self, stop: asyncio.Event) -> None:
        routing_key = await self._routing_key(stop)
        if routing_key is None:
            return
        connection = await aio_pika.connect(
            self.settings.amqp_url,
            client_properties={"connection_name": f"worker {self.settings.worker_id}"},
        )
        lost = asyncio.Event()
        connection.close_callbacks.add(lambda *_: lost.set())
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.settings.prefetch)
            queue = await declare_service_queue(
                channel, service=self.settings.service_name, routing_key=routing_key
            )
            await self._follow_model_changes(channel)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            await queue.consume(inbox.put)
            log.info(
                "worker %s consuming %s (routing key %s)",
                self.settings.worker_id,
                queue.name,
                routing_key,
            )
            await self._work(inbox, stop, lost)
        if lost.is_set() and not stop.is_set():
            raise ConnectionError("connection to RabbitMQ closed")

    async def _routing_key(self, stop: asyncio.Event) -> str | None:
        """The service's routing key from queue_manager, waiting until it exists."""
        for attempt in itertools.count():
            if stop.is_set():
                return None
            try:
                service: dict[str, Any] = await self._qm.service(self.settings.service_name)
                return str(service["routing_key"])
            except (errors.NotFound, errors.Unavailable) as exc:
                if attempt % 15 == 0:  # say it once, then every half minute
                    log.info(
                        "waiting for service %s in queue_manager: %s",
                        self.settings.service_name,
                        exc.detail,
                    )
                await pause(stop, 2.0)
        return None

    async def _follow_model_changes(self, channel: AbstractChannel) -> None:
        exchange = await declare_model_events_exchange(channel)
        events = await channel.declare_queue(exclusive=True, auto_delete=True)
        await events.bind(exchange, routing_key=self.settings.service_name)

        async def changed(message: AbstractIncomingMessage) -> None:
            log.info(
                "model change announced for %s: %s",
                self.settings.service_name,
                message.body.decode(errors="replace"),
            )
            self.models.mark_stale()

        await events.consume(changed, no_ack=True)

    async def _work(
        self,
        inbox: asyncio.Queue[AbstractIncomingMessage],
        stop: asyncio.Event,
        lost: asyncio.Event,
    ) -> None:
        refresh = asyncio.create_task(self._refresh_binding(stop))
        try:
            while not (stop.is_set() or lost.is_set()):
                first = await _next(inbox, stop, lost)
                if first is None:
                    continue
                batch = [first]
                while len(batch) < self.settings.batch_size and not inbox.empty():
                    batch.append(inbox.get_nowait())
                await self._handle(batch)
        finally:
            refresh.cancel()

    async def _handle(self, batch: list[AbstractIncomingMessage]) -> None:
        deliveries = [Delivery(m.body, m.message_id, m.routing_key or "") for m in batch]
        outcomes = await self.handler.handle(deliveries)
        self.handled += sum(outcome is not Outcome.retry for outcome in outcomes)
        for message, outcome in zip(batch, outcomes, strict=True):
            try:
                if outcome is Outcome.ack:
                    await message.ack()
                elif outcome is Outcome.dead_letter:
                    await message.reject(requeue=False)
                else:
                    await message.nack(requeue=True)
            except aio_pika.exceptions.AMQPException as exc:
                # The channel is gone: the broker redelivers, and stored work is idempotent.
                log.warning("could not settle message %s: %r", message.message_id, exc)

    async def _refresh_binding(self, stop: asyncio.Event) -> None:
        """Re-check the binding now and then, in case a change event was missed."""
        while not stop.is_set():
            await pause(stop, self.settings.binding_refresh_seconds)
            self.models.mark_stale()


async def _next(
    inbox: asyncio.Queue[AbstractIncomingMessage], stop: asyncio.Event, lost: asyncio.Event
) -> AbstractIncomingMessage | None:
    """The next delivery, or None when the worker stops or the connection is lost."""
    getter = asyncio.ensure_future(inbox.get())
    stopping = asyncio.ensure_future(stop.wait())
    losing = asyncio.ensure_future(lost.wait())
    await asyncio.wait({getter, stopping, losing}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stopping, losing):
        task.cancel()
    if getter.done():
        return getter.result()
    getter.cancel()
    return None
