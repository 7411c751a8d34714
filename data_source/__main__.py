"""`python -m data_source`: publish the demo's production readings to the sensor
exchange at DATA_SOURCE_RATE readings a second (.env.example and `make run`: 1; without a
setting, 0.5, the original's one every 2 seconds), until done, SIGTERM or Ctrl-C.
While RabbitMQ is unreachable, it retries every 2 seconds.

    python -m data_source                 # DATA_SOURCE_RATE, DATA_SOURCE_COUNT from .env
    python -m data_source --rate 500      # load test
    python -m data_source --loop          # replay forever
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import logging
import sys
from datetime import UTC, datetime

import aio_pika
from tenacity import AsyncRetrying, retry_if_exception_type, wait_fixed

from data_source.publisher import (
    PublishInterrupted,
    Stream,
    messages,
    publish,
)
from data_source.settings import Settings, load_settings
from gits_common.amqp import declare_sensor_exchange
from gits_common.lifecycle import log_while_waiting, pause, stop_on_signals, stop_when_stopped
from gits_common.settings import configure_logging
from gits_ml.demo import PRODUCT_QUALITY, generate

log = logging.getLogger("data_source")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options; those left out are None, for the settings to fill in."""
    parser = argparse.ArgumentParser(
        prog="python -m data_source",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, help="messages per second (DATA_SOURCE_RATE)")
    parser.add_argument("--count", type=int, help="0: the whole split (DATA_SOURCE_COUNT)")
    parser.add_argument("--loop", action="store_true", help="replay the split forever")
    parser.add_argument("--routing-key", help="default: DATA_SOURCE_ROUTING_KEY")
    parser.add_argument(
        "--run",
        default=datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
        help="tag in every message id of this run (default: the start time)",
    )
    args = parser.parse_args(argv)
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be above 0")
    return args


def with_defaults(args: argparse.Namespace, settings: Settings) -> argparse.Namespace:
    """The options, with the settings where an option was left out."""
    return argparse.Namespace(
        **{
            **vars(args),
            "rate": settings.rate if args.rate is None else args.rate,
            "count": settings.count if args.count is None else args.count,
            "routing_key": args.routing_key or settings.routing_key,
        }
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Publish until done or signalled, reconnecting when the broker goes away; returns
    how many messages were confirmed."""
    stop = stop_on_signals()
    production = generate(settings.demo).production
    stream = messages(
        production, PRODUCT_QUALITY, routing_key=args.routing_key, loop=args.loop, run=args.run
    )
    sent, left = 0, args.count

    async def attempt() -> None:
        nonlocal sent, left, stream
        if stop.is_set():  # stopped during the pause: no new connection
            return
        try:
            sent += await _publish(settings, args, stream, left, stop)
        except PublishInterrupted as exc:
            # Resume after what was confirmed; the unconfirmed go first (their ids make a
            # second copy harmless).
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
    log.info("publishing to %r at %g msg/s", args.routing_key, args.rate)
    await retrying(attempt)
    log.info("published %d messages", sent)
    return sent


async def _publish(
    settings: Settings, args: argparse.Namespace, stream: Stream, count: int, stop: asyncio.Event
) -> int:
    async with await aio_pika.connect(settings.amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await declare_sensor_exchange(channel)
        return await publish(
            exchange, stream, routing_key=args.routing_key, rate=args.rate, count=count, stop=stop
        )


def main(argv: list[str]) -> int:
    """Exit 0 when every message was confirmed or the run was stopped."""
    args = parse_args(argv)
    configure_logging()
    settings = load_settings()
    asyncio.run(run(with_defaults(args, settings), settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
