"""`python -m data_source`: publish the demo's production readings to the sensor
exchange (one every 2 seconds by default, as the original).

    python -m data_source                 # DATA_SOURCE_RATE, DATA_SOURCE_COUNT from .env
    python -m data_source --rate 500      # load test
    python -m data_source --loop          # replay forever
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
from datetime import UTC, datetime

import aio_pika

from data_source.publisher import PublishInterrupted, Stream, messages, publish
from data_source.settings import Settings, load_settings
from gits_common.amqp import declare_sensor_exchange
from gits_common.demo import PRODUCT_QUALITY, generate
from gits_common.lifecycle import pause, stop_on_signals
from gits_common.settings import configure_logging

log = logging.getLogger("data_source")


def parse_args(argv: list[str], settings: Settings) -> argparse.Namespace:
    """Command-line options; defaults come from the settings."""
    parser = argparse.ArgumentParser(
        prog="python -m data_source",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=settings.rate, help="messages per second")
    parser.add_argument("--count", type=int, default=settings.count, help="0: the whole split")
    parser.add_argument("--loop", action="store_true", help="replay the split forever")
    parser.add_argument("--routing-key", default=settings.routing_key)
    parser.add_argument(
        "--run",
        default=datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
        help="tag in every message id of this run (default: the start time)",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be above 0")
    return args


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Publish until done or signalled, reconnecting when the broker goes away; returns
    how many messages were confirmed."""
    stop = stop_on_signals()
    production = generate(settings.demo).production
    stream = messages(
        production, PRODUCT_QUALITY, routing_key=args.routing_key, loop=args.loop, run=args.run
    )
    sent, left = 0, args.count
    log.info("publishing to %r at %g msg/s", args.routing_key, args.rate)
    while not stop.is_set():
        try:
            sent += await _publish(settings, args, stream, left, stop)
            break
        except PublishInterrupted as exc:
            sent += exc.sent
            left = left - exc.sent if left else 0
            stream = itertools.chain(exc.unconfirmed, stream)
            log.warning("broker connection lost after %d messages; reconnecting", sent)
        except (aio_pika.exceptions.AMQPException, OSError) as exc:
            log.warning("cannot reach RabbitMQ (%r); retrying", exc)
        await pause(stop, 2.0)
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
    configure_logging()
    settings = load_settings()
    asyncio.run(run(parse_args(argv, settings), settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
