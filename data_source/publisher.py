"""Publishing sensor messages: persistent, publisher-confirmed, one `message_id` each,
paced to a rate. A message nobody's queue would take waits until a service is bound."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pandas as pd
from aio_pika.abc import AbstractExchange
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_fixed

from data_source.metrics import PublisherMetrics
from gits_common.amqp import declare_sensor_exchange
from gits_common.lifecycle import log_while_waiting, pause, stop_when_stopped
from gits_common.schemas import UseCase

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 500  # confirms awaited together at high rates
Stream = Iterator[tuple[str, dict[str, Any]]]


class PublishInterrupted(Exception):
    """The broker connection broke; `unconfirmed` must be sent again (their ids make a
    second copy harmless)."""

    def __init__(self, sent: int, unconfirmed: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(f"interrupted after {sent} messages")
        self.sent, self.unconfirmed = sent, unconfirmed


def messages(
    frame: pd.DataFrame, use_case: UseCase, *, routing_key: str, loop: bool, run: str | None
) -> Stream:
    """(message_id, body) for each row of `frame` (its `message_id` column and the use
    case's features), stamped with the time of sending.

    With a `run` tag (the demo), a reading sent now is a new reading, so its id is
    `<row id>~<run>` (and `~<run>-r<n>` on the n-th replay): a second run, or a replay,
    adds rows instead of repeating stored ones, and the row id before the `~` names the
    demo row, whose label the ground truth carries. Without one (a user's file), the
    first pass sends the file's ids as they are, so that a label file can name them;
    sending the file again is then a no-op, and a replay is `<id>~r<n>`."""
    ids = frame["message_id"].astype(str).tolist()
    features = frame[use_case.feature_names]
    readings = features.astype(object).where(features.notna(), None).to_dict("records")
    for replay in itertools.count() if loop else [0]:
        if run is not None:
            suffix: str | None = run if replay == 0 else f"{run}-r{replay}"
        else:
            suffix = None if replay == 0 else f"r{replay}"
        for base_id, reading in zip(ids, readings, strict=True):
            message_id = base_id if suffix is None else f"{base_id}~{suffix}"
            yield (
                message_id,
                {
                    "message_id": message_id,
                    "timestamp": datetime.now(UTC).isoformat(),
                    "routing_key": routing_key,
                    "use_case": use_case.name,
                    "features": reading,
                },
            )


async def publish_one(
    exchange: AbstractExchange,
    routing_key: str,
    message_id: str,
    body: dict[str, Any],
    *,
    stop: asyncio.Event,
    before_sleep: Callable[[RetryCallState], None],
    metrics: PublisherMetrics,
) -> None:
    """Publish and wait for the broker's confirm; while no queue takes the key (its service
    is not bound yet), try again every second until one does or `stop` is set, then raise
    the `DeliveryError`."""
    message = aio_pika.Message(
        json.dumps(body).encode(),
        message_id=message_id,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    send = functools.partial(exchange.publish, message, routing_key=routing_key, mandatory=True)
    try:
        await send()
    except aio_pika.exceptions.DeliveryError:
        # Built only once a message waits: at thousands of messages a second its cost counts.
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(aio_pika.exceptions.DeliveryError),
            stop=stop_when_stopped(stop),
            wait=wait_fixed(1.0),
            sleep=functools.partial(pause, stop),
            before_sleep=before_sleep,
            reraise=True,
        )
        with metrics.waiting.track_inprogress():
            await retrying(send)


async def publish(
    exchange: AbstractExchange,
    stream: Stream,
    *,
    routing_key: str,
    rate: float,
    count: int,
    stop: asyncio.Event,
    on_sent: Callable[[int], None] | None = None,
    metrics: PublisherMetrics | None = None,
) -> int:
    """Publish up to `count` messages (0: all) at `rate` per second; returns how many
    the broker confirmed. `on_sent(n)` is told of every n confirmed (a progress bar);
    `metrics` (when given) counts them."""
    metrics = metrics or PublisherMetrics(use_case="", routing_key=routing_key)
    if count:
        stream = itertools.islice(stream, count)
    started = last_report = time.monotonic()
    sent = 0
    # One for all the messages waiting together, so that a wait is said once, not per message.
    unroutable = log_while_waiting(
        log,
        "no queue takes routing key %r yet; waiting until its service is bound (%r)",
        routing_key,
        level=logging.WARNING,
    )
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate) + 1 - sent
        batch = list(itertools.islice(stream, max(1, min(due, MAX_IN_FLIGHT))))
        if not batch:
            break
        metrics.published.inc(len(batch))
        metrics.unconfirmed.inc(len(batch))
        try:
            await asyncio.gather(
                *(
                    publish_one(
                        exchange,
                        routing_key,
                        i,
                        b,
                        stop=stop,
                        before_sleep=unroutable,
                        metrics=metrics,
                    )
                    for i, b in batch
                )
            )
        except (aio_pika.exceptions.AMQPException, ConnectionError) as exc:
            if stop.is_set():  # stopped while waiting for a queue: nothing is lost
                break
            raise PublishInterrupted(sent, batch) from exc
        finally:
            metrics.unconfirmed.dec(len(batch))
        metrics.confirmed.inc(len(batch))
        sent += len(batch)
        if on_sent is not None:
            on_sent(len(batch))
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            log.info("published %d messages (%.1f/s)", sent, sent / (last_report - started))
        wait = started + sent / rate - time.monotonic()
        if wait > 0:
            await pause(stop, wait)
    return sent


async def publish_to(
    amqp_url: str,
    stream: Stream,
    *,
    routing_key: str,
    rate: float,
    count: int,
    stop: asyncio.Event,
    on_sent: Callable[[int], None] | None = None,
    metrics: PublisherMetrics | None = None,
) -> int:
    """Connect, declare the sensor exchange and `publish` on a publisher-confirmed
    channel; returns how many messages the broker confirmed. Raises `PublishInterrupted`
    when the connection breaks, aio-pika's errors when it cannot be made."""
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await declare_sensor_exchange(channel)
        return await publish(
            exchange,
            stream,
            routing_key=routing_key,
            rate=rate,
            count=count,
            stop=stop,
            on_sent=on_sent,
            metrics=metrics,
        )


async def publish_reliably(
    amqp_url: str,
    stream: Stream,
    *,
    routing_key: str,
    rate: float,
    count: int,
    stop: asyncio.Event,
    on_sent: Callable[[int], None] | None = None,
    metrics: PublisherMetrics | None = None,
) -> int:
    """`publish_to` until the stream is done or `stop` is set, reconnecting every 2 s
    while the broker is away: only an outage is retried. After a break the unconfirmed
    messages go first (their ids make a second copy harmless). Returns how many messages
    the broker confirmed."""
    sent, left = 0, count

    async def attempt() -> None:
        nonlocal sent, left, stream
        if stop.is_set():  # stopped during the pause: no new connection
            return
        try:
            sent += await publish_to(
                amqp_url,
                stream,
                routing_key=routing_key,
                rate=rate,
                count=left,
                stop=stop,
                on_sent=on_sent,
                metrics=metrics,
            )
        except PublishInterrupted as exc:
            sent += exc.sent
            left = left - exc.sent if left else 0
            stream = itertools.chain(exc.unconfirmed, stream)
            raise

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(
            (PublishInterrupted, aio_pika.exceptions.AMQPException, OSError)
        ),
        stop=stop_when_stopped(stop),
        wait=wait_fixed(2.0),
        sleep=functools.partial(pause, stop),
        before_sleep=log_while_waiting(
            log, "cannot publish to RabbitMQ; reconnecting (%r)", level=logging.WARNING
        ),
        retry_error_callback=lambda _state: None,  # stopped while reconnecting
    )
    await retrying(attempt)
    return sent
