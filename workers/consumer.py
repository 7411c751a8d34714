"""The AMQP side of a worker: one connection at a time, rebuilt after any loss (a fresh
connection re-declares and re-consumes, which sidesteps aio-pika robust connections
coming back with zero consumers), batches taken from what is already queued, and each
delivery acked, dead-lettered (published to the dead-letter queue with its reason in a
header, then acked) or requeued as the handler decided.

A delivery RabbitMQ has made before (x-delivery-count: a worker died holding it, or
returned it when stopping) is not handled from the work queue: it is moved, unread, to
the service's quarantine queue, which each worker takes one message at a time. A message
that kills its worker every time thus reaches the delivery limit alone and is
dead-lettered with the reason; the neighbours that were in the dead worker's hands with
it pass through quarantine once and are stored. (Handling such a delivery alone in the
work queue is not enough: the messages prefetched beside it are counted as delivered
again each time it kills a worker, and reach the limit with it.)"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    wait_exponential,
    wait_fixed,
)

from gits_common import errors
from gits_common.amqp import (
    DEAD_LETTER_EXCHANGE,
    REASON_HEADER,
    dead_letter_queue,
    declare_model_events_exchange,
    declare_service_queue,
    quarantine_queue,
)
from gits_common.clients import QueueManagerClient
from gits_common.lifecycle import log_while_waiting, pause, stop_when_stopped
from gits_common.logs import log_context
from gits_common.registry import ServiceRead
from workers.handler import Delivery, Handler, Outcome, Settlement
from workers.metrics import Settled
from workers.models import ModelCache, NoModel
from workers.settings import Settings

log = logging.getLogger(__name__)
# What a channel whose connection is gone raises from aio-pika: its AMQP errors, and
# ChannelInvalidStateError (a RuntimeError) for a call on a channel already closed.
CHANNEL_GONE = (aio_pika.exceptions.AMQPException, aio_pika.exceptions.ChannelInvalidStateError)
# What a lost broker connection looks like from aio-pika.
CONNECTION_LOST = (*CHANNEL_GONE, ConnectionError, OSError)
# The routing key a message was published with, kept when it is moved to quarantine
# (where it arrives through the default exchange, under the queue's name).
ROUTING_KEY_HEADER = "x-gits-routing-key"
# How many times the work queue had delivered a message when it was moved to quarantine.
WORK_QUEUE_DELIVERIES_HEADER = "x-gits-work-queue-deliveries"
# The metrics' name of each way a delivery is settled.
SETTLED = {
    Outcome.ack: Settled.stored,
    Outcome.dead_letter: Settled.dead_lettered,
    Outcome.retry: Settled.requeued,
}


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
        reconnecting = AsyncRetrying(
            retry=retry_if_exception_type(CONNECTION_LOST),
            wait=wait_exponential(min=1, max=30),
            stop=stop_when_stopped(stop),
            sleep=functools.partial(pause, stop),
            before_sleep=before_sleep_log(log, logging.WARNING),
            retry_error_callback=lambda _state: None,
        )
        async for attempt in reconnecting:
            with attempt:
                while not stop.is_set():
                    await self._session(stop)

    async def _session(self, stop: asyncio.Event) -> None:
        routing_key = await self._routing_key(stop)
        if routing_key is None:
            return
        connection = await aio_pika.connect(
            self.settings.amqp_url,
            client_properties={"connection_name": f"worker {self.settings.worker_id}"},
        )
        lost = asyncio.Event()  # the connection closed
        over = asyncio.Event()  # the session ends: connection lost, or service deleted

        def closed(*_: object) -> None:
            lost.set()
            over.set()

        connection.close_callbacks.add(closed)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.settings.prefetch)
            queue = await declare_service_queue(
                channel, service=self.settings.service_name, routing_key=routing_key
            )
            confirmed = await connection.channel(publisher_confirms=True)
            outlets = Outlets(
                dead=await confirmed.get_exchange(DEAD_LETTER_EXCHANGE),
                quarantine=confirmed.default_exchange,
            )
            await self._follow_model_changes(channel)
            await self._load_model()
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            await queue.consume(inbox.put)
            one_at_a_time = await connection.channel()
            await one_at_a_time.set_qos(prefetch_count=1)
            suspects: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            quarantined = await one_at_a_time.get_queue(
                quarantine_queue(self.settings.service_name)
            )
            await quarantined.consume(suspects.put)
            log.info(
                "worker %s consuming %s (routing key %s)",
                self.settings.worker_id,
                queue.name,
                routing_key,
            )
            await self._work(inbox, suspects, outlets, stop, over)
        if lost.is_set() and not stop.is_set():
            raise ConnectionError("connection to RabbitMQ closed")

    async def _routing_key(self, stop: asyncio.Event) -> str | None:
        """The service's routing key from queue_manager, waiting until it exists (None
        when the worker is stopped first)."""
        waiting = AsyncRetrying(
            retry=retry_if_exception_type((errors.NotFound, errors.Unavailable)),
            wait=wait_fixed(2.0),
            stop=stop_when_stopped(stop),
            sleep=functools.partial(pause, stop),
            before_sleep=log_while_waiting(
                log, "waiting for service %s in queue_manager: %s", self.settings.service_name
            ),
            retry_error_callback=lambda _state: None,
        )
        service: ServiceRead | None = await waiting(self._qm.service, self.settings.service_name)
        return None if service is None else service.routing_key

    async def _load_model(self) -> None:
        """Load the bound model before consuming, so that no delivery waits for it; when
        there is none yet (or queue_manager is out of reach) the first batch tries again."""
        try:
            model = await self.models.current()
        except (NoModel, errors.GitsError) as exc:
            log.info("no model loaded before consuming: %s", exc)
        else:
            log.info("model %s loaded before consuming", model.label)

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
        suspects: asyncio.Queue[AbstractIncomingMessage],
        outlets: Outlets,
        stop: asyncio.Event,
        over: asyncio.Event,
    ) -> None:
        """Batches of fresh deliveries from the work queue, up to `batches_in_flight` of
        them handled at once (one predicts while another's rows and jobs are on their way),
        until the worker stops or the session is over. A message from quarantine waits
        for the batches in flight and is then handled alone, with nothing else in hand."""
        refresh = asyncio.create_task(self._refresh_binding(stop, over))
        in_flight: set[asyncio.Task[None]] = set()
        room = asyncio.Semaphore(self.settings.batches_in_flight)
        failed: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            room.release()
            if not task.cancelled() and (exc := task.exception()) is not None:
                failed.append(exc)  # raised below, as a failure of the session
                over.set()
            if self.handler.wedged:
                stop.set()  # a model call would not end: this worker is replaced

        def ending() -> bool:
            # unsettled deliveries go back to the queue when the connection closes
            return stop.is_set() or over.is_set() or self.handler.wedged

        try:
            while not ending():
                if not suspects.empty():
                    await asyncio.gather(*in_flight)
                    if not ending():
                        await self._handle([suspects.get_nowait()], outlets)
                    continue
                first = _waiting(inbox)
                if first is None and (first := await _next(inbox, suspects, stop, over)) is None:
                    continue
                if _from_quarantine(first, self.settings.service_name):
                    suspects.put_nowait(first)  # handled alone, on the next turn
                    continue
                await room.acquire()
                if ending():
                    room.release()
                    break
                batch = asyncio.create_task(self._take(first, inbox, outlets))
                in_flight.add(batch)
                batch.add_done_callback(finished)
            if self.handler.wedged:
                stop.set()  # a model call would not end: this worker is replaced
        finally:
            refresh.cancel()
            # settle what is in hand before the connection closes
            await asyncio.gather(*in_flight, return_exceptions=True)
        if failed:
            raise failed[0]

    async def _take(
        self,
        first: AbstractIncomingMessage,
        inbox: asyncio.Queue[AbstractIncomingMessage],
        outlets: Outlets,
    ) -> None:
        """Handle a fresh delivery and those already waiting behind it as one batch; a
        redelivery from the work queue is moved to quarantine."""
        batch: list[AbstractIncomingMessage] = []
        following: AbstractIncomingMessage | None = first
        while following is not None and len(batch) < self.settings.batch_size:
            if _deliveries_before(following) > 0:
                await self._quarantine(following, outlets)
            else:
                batch.append(following)
            # never wait for more: a lone message is handled at once
            following = None if inbox.empty() else inbox.get_nowait()
        if following is not None:
            await inbox.put(following)  # the batch is full: it waits for the next one
        if batch:
            await self._handle(batch, outlets)

    async def _quarantine(self, message: AbstractIncomingMessage, outlets: Outlets) -> None:
        """Move a redelivery to the quarantine queue (acked once the broker confirmed
        the copy; should the move fail, the broker delivers the message again)."""
        try:
            await outlets.quarantine.publish(
                _quarantined(message), routing_key=quarantine_queue(self.settings.service_name)
            )
            await message.ack()
            self.handler.metrics.redelivered()
        except CHANNEL_GONE as exc:
            log.warning("could not quarantine message %s: %r", message.message_id, exc)

    async def _handle(self, batch: list[AbstractIncomingMessage], outlets: Outlets) -> None:
        started = time.perf_counter()
        self.handler.metrics.batch(len(batch))
        deliveries = [
            Delivery(m.body, m.message_id, _routing_key(m), _deliveries_before(m)) for m in batch
        ]
        # A lone message (from quarantine, or a quiet queue) names what is logged about it.
        with log_context(message_id=batch[0].message_id if len(batch) == 1 else None):
            settlements = await self.handler.handle(deliveries)
        self.handled += sum(s.outcome is not Outcome.retry for s in settlements)
        for message, settlement in zip(batch, settlements, strict=True):
            try:
                await self._settle(message, settlement, outlets.dead)
                self.handler.metrics.settled(
                    SETTLED[settlement.outcome], seconds=time.perf_counter() - started
                )
            except CHANNEL_GONE as exc:
                # The channel is gone: the broker redelivers, and stored work is idempotent.
                log.warning("could not settle message %s: %r", message.message_id, exc)

    async def _settle(
        self, message: AbstractIncomingMessage, settlement: Settlement, dead: AbstractExchange
    ) -> None:
        if settlement.outcome is Outcome.ack:
            await message.ack()
        elif settlement.outcome is Outcome.dead_letter:
            await dead.publish(
                _dead_letter(message, settlement.reason or "", self.settings.worker_id),
                routing_key=dead_letter_queue(self.settings.service_name),
            )
            await message.ack()  # after the broker confirmed the dead letter
            self.handler.metrics.dead_lettered(settlement.kind)
            # One line a dead letter, so that a message id found in a log says why.
            with log_context(message_id=message.message_id):
                log.warning("dead-lettered message %s: %s", message.message_id, settlement.reason)
        else:
            await message.nack(requeue=True)

    async def _refresh_binding(self, stop: asyncio.Event, over: asyncio.Event) -> None:
        """Re-check the binding now and then, in case a change event was missed; when
        the service is gone (deleted in queue_manager, which deletes its queues too),
        end the session, so that the worker waits for the service to exist again."""
        while not stop.is_set():
            await pause(stop, self.settings.binding_refresh_seconds)
            self.models.mark_stale()
            try:
                await self._qm.service(self.settings.service_name)
            except errors.NotFound:
                log.warning("service %s was deleted", self.settings.service_name)
                over.set()
                return
            except errors.GitsError:
                pass  # queue_manager unreachable: the cached binding serves meanwhile


@dataclass(frozen=True)
class Outlets:
    """Where a worker publishes, on a channel with publisher confirms: dead letters, and
    moves to quarantine (through the default exchange, by queue name)."""

    dead: AbstractExchange
    quarantine: AbstractExchange


def _quarantined(message: AbstractIncomingMessage) -> aio_pika.Message:
    """The message as it arrived, for the quarantine queue: its routing key and the work
    queue's delivery count kept in headers."""
    headers = dict(message.headers or {})
    headers[WORK_QUEUE_DELIVERIES_HEADER] = _deliveries_before(message)
    headers.pop("x-delivery-count", None)
    headers.setdefault(ROUTING_KEY_HEADER, message.routing_key or "")
    return _republished(message, headers)


def _from_quarantine(message: AbstractIncomingMessage, service: str) -> bool:
    """Whether the delivery came from the service's quarantine queue."""
    return message.routing_key == quarantine_queue(service) and (
        ROUTING_KEY_HEADER in (message.headers or {})
    )


def _routing_key(message: AbstractIncomingMessage) -> str:
    """The routing key the message was published with (kept through quarantine)."""
    kept = (message.headers or {}).get(ROUTING_KEY_HEADER)
    return kept if isinstance(kept, str) else message.routing_key or ""


def _dead_letter(message: AbstractIncomingMessage, reason: str, worker: str) -> aio_pika.Message:
    """The message as it arrived, with why it was dead-lettered in its headers."""
    headers = dict(message.headers or {})
    headers[REASON_HEADER] = reason[:4000]
    headers["x-gits-worker"] = worker
    return _republished(message, headers)


def _republished(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """A persistent copy of a delivery's body and properties, with these headers."""
    return aio_pika.Message(
        message.body,
        headers=headers,
        message_id=message.message_id,
        content_type=message.content_type,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _deliveries_before(message: AbstractIncomingMessage) -> int:
    """How many times RabbitMQ delivered the message before without it being settled
    (quorum queues count them in x-delivery-count)."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


def _waiting(inbox: asyncio.Queue[AbstractIncomingMessage]) -> AbstractIncomingMessage | None:
    """The next fresh delivery when one is already waiting (no tasks made to wait)."""
    return None if inbox.empty() else inbox.get_nowait()


async def _next(
    inbox: asyncio.Queue[AbstractIncomingMessage],
    suspects: asyncio.Queue[AbstractIncomingMessage],
    stop: asyncio.Event,
    over: asyncio.Event,
) -> AbstractIncomingMessage | None:
    """The next delivery of either queue, or None when the worker stops or the
    session is over."""
    getters = [asyncio.ensure_future(inbox.get()), asyncio.ensure_future(suspects.get())]
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(over.wait())]
    await asyncio.wait([*getters, *waiters], return_when=asyncio.FIRST_COMPLETED)
    for task in waiters:
        task.cancel()
    got = None
    for getter, queue in zip(getters, (inbox, suspects), strict=True):
        if not getter.done():
            getter.cancel()
        elif got is None:
            got = getter.result()
        else:
            queue.put_nowait(getter.result())  # both came at once: the second waits
    return got
