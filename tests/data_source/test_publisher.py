"""data_source publishes the demo readings as persistent, identified sensor messages."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import aio_pika

from data_source.publisher import messages, publish
from gits_common.amqp import declare_sensor_exchange
from gits_common.schemas import SensorMessage
from gits_ml.demo import PRODUCT_QUALITY, DemoConfig, generate

DEMO = generate(DemoConfig(history_hours=100, production_minutes=50))


def test_messages_follow_the_contract_and_runs_and_replays_get_new_ids():
    stream = messages(DEMO.production, PRODUCT_QUALITY, routing_key="rk", loop=True, run="A")
    first_pass = [next(stream) for _ in range(50)]
    replay = next(stream)
    other_run = next(
        messages(DEMO.production, PRODUCT_QUALITY, routing_key="rk", loop=False, run="B")
    )

    message = SensorMessage.model_validate(first_pass[0][1])
    assert message.message_id == f"{DEMO.production.message_id[0]}~A"
    assert set(message.features) == set(PRODUCT_QUALITY.feature_names)
    assert message.features["T_data_3_1"] == DEMO.production["T_data_3_1"][0]
    assert len({mid for mid, _ in first_pass}) == 50
    assert replay[0] == f"{DEMO.production.message_id[0]}~A-r1"
    assert other_run[0] == f"{DEMO.production.message_id[0]}~B"


async def _consume_all(url: str, routing_key: str, expected: int, bind_after: float = 0.0):
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await declare_sensor_exchange(channel)
        queue = await channel.declare_queue(exclusive=True)

        async def bind_later() -> None:
            await asyncio.sleep(bind_after)
            await queue.bind(exchange, routing_key=routing_key)

        binder = asyncio.create_task(bind_later())
        stream = messages(
            DEMO.production, PRODUCT_QUALITY, routing_key=routing_key, loop=False, run="t"
        )
        sent = await publish(
            exchange,
            stream,
            routing_key=routing_key,
            rate=1000.0,
            count=expected,
            stop=asyncio.Event(),
        )
        await binder
        got = []
        while (message := await queue.get(fail=False)) is not None:
            got.append(message)
            await message.ack()
        return sent, got


def test_published_messages_are_persistent_json_with_ids(rabbitmq_url):
    sent, got = asyncio.run(_consume_all(rabbitmq_url, f"test.{uuid.uuid4().hex}", 25))

    assert sent == 25
    assert len(got) == 25
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in got)
    assert [m.message_id for m in got] == [f"{i}~t" for i in DEMO.production.message_id[:25]]
    body = json.loads(got[0].body)
    assert body["message_id"] == got[0].message_id
    assert got[0].content_type == "application/json"


def test_a_message_no_queue_takes_waits_instead_of_being_lost(rabbitmq_url):
    # Given no queue is bound yet, when one is bound 1.5 s after publishing starts
    sent, got = asyncio.run(
        _consume_all(rabbitmq_url, f"test.{uuid.uuid4().hex}", 3, bind_after=1.5)
    )
    # Then every message still arrives
    assert sent == 3
    assert [m.message_id for m in got] == [f"{i}~t" for i in DEMO.production.message_id[:3]]


def test_a_stop_ends_the_wait_for_a_queue_and_the_wait_is_said_once(rabbitmq_url, caplog):
    caplog.set_level(logging.WARNING, logger="data_source.publisher")

    async def go() -> tuple[int, float]:
        async with await aio_pika.connect(rabbitmq_url) as connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await declare_sensor_exchange(channel)
            routing_key = f"test.{uuid.uuid4().hex}"  # no queue takes it
            stream = messages(
                DEMO.production, PRODUCT_QUALITY, routing_key=routing_key, loop=False, run="s"
            )
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(2.5, stop.set)
            started = time.monotonic()
            sent = await asyncio.wait_for(
                publish(exchange, stream, routing_key=routing_key, rate=100, count=5, stop=stop),
                timeout=20,
            )
            return sent, time.monotonic() - started

    # Given no queue takes the key, when the publisher is stopped while it waits
    sent, seconds = asyncio.run(go())

    # Then it returns at once, having sent nothing, and said it waited once
    assert sent == 0
    assert seconds < 4
    warnings = [r.getMessage() for r in caplog.records if "no queue takes" in r.getMessage()]
    assert len(warnings) == 1
