"""`python -m data_source` serves its metrics on DATA_SOURCE_METRICS_PORT: messages sent,
confirmed, and those waiting for a queue that takes their routing key."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika

from data_source import __main__ as data_source_main
from data_source.settings import Settings
from gits_common.amqp import declare_sensor_exchange
from gits_ml.demo import DemoConfig
from tests.conftest import free_port
from tests.metrics_helpers import Samples, moved, scrape, value

WAITING = "gits_data_source_waiting_messages"
CONFIRMED = "gits_data_source_confirmed_total"


def settings_for(amqp_url: str, metrics_port: int) -> Settings:
    return Settings(
        amqp_url=amqp_url,
        routing_key="rk",
        rate=0.5,
        count=0,
        demo=DemoConfig(history_hours=100, production_minutes=50),
        use_case="product_quality",
        csv=None,
        ml_data_api_url="http://127.0.0.1:9",
        metrics_port=metrics_port,
    )


async def scraped(url: str, until, *, seconds: float = 30) -> Samples:
    """A scrape (from a thread: the publisher runs on this loop) once `until` holds."""
    for _ in range(int(seconds / 0.1)):
        samples = await asyncio.to_thread(scrape, url)
        if until(samples):
            return samples
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never showed what was waited for")


def test_messages_waiting_for_a_queue_then_confirmed_move_the_counters(rabbitmq_url, monkeypatch):
    # Given data_source sending 10 messages on a routing key no queue takes yet
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    routing_key = f"test.metrics.{uuid.uuid4().hex}"
    stop = asyncio.Event()
    monkeypatch.setattr(data_source_main, "stop_on_signals", lambda: stop)
    settings = settings_for(rabbitmq_url, port)
    args = data_source_main.parse_args(["--rate", "100", "--count", "10", "--run", "m"])
    args = data_source_main.with_defaults(args, settings)
    args.routing_key = routing_key

    async def go() -> tuple[Samples, Samples, int]:
        async with await aio_pika.connect(rabbitmq_url) as connection:
            channel = await connection.channel()
            exchange = await declare_sensor_exchange(channel)
            running = asyncio.create_task(data_source_main.run(args, settings))
            # the first message waits for a queue, unconfirmed
            before = await scraped(url, lambda s: value(s, WAITING) >= 1)
            # When a queue takes the key
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key=routing_key)
            sent = await asyncio.wait_for(running, 30)
            after = await asyncio.to_thread(scrape, url)
            return before, after, sent

    before, after, sent = asyncio.run(go())

    # Then all 10 are counted as sent and confirmed, and none waits any more
    labels = {"use_case": "product_quality", "routing_key": routing_key}
    assert sent == 10
    assert value(before, CONFIRMED, **labels) == 0
    assert value(before, "gits_data_source_unconfirmed_messages", **labels) >= 1
    assert moved(before, after, CONFIRMED, **labels) == 10
    assert value(after, "gits_data_source_published_total", **labels) == 10
    assert value(after, WAITING, **labels) == 0
    assert value(after, "gits_data_source_unconfirmed_messages", **labels) == 0
