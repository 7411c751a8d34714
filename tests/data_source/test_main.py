"""`python -m data_source` takes its defaults from the settings, and rides out a broker it
cannot reach: it retries, says so once, and publishes everything once it can."""

from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest

from data_source import __main__ as data_source_main
from data_source.settings import Settings
from gits_common.amqp import declare_sensor_exchange
from gits_ml.demo import DemoConfig, generate
from tests.tcp_proxy import TcpProxy

DEMO = DemoConfig(history_hours=100, production_minutes=50)


def settings_for(amqp_url: str) -> Settings:
    return Settings(
        amqp_url=amqp_url,
        routing_key="rk",
        rate=0.5,
        count=0,
        demo=DEMO,
        use_case="product_quality",
        csv=None,
        ml_data_api_url="http://127.0.0.1:9",
    )


def test_left_out_options_come_from_the_settings_and_given_ones_win():
    settings = settings_for("amqp://unused")

    defaults = data_source_main.with_defaults(data_source_main.parse_args([]), settings)
    given = data_source_main.with_defaults(
        data_source_main.parse_args(["--rate", "500", "--count", "7", "--routing-key", "k"]),
        settings,
    )

    assert (defaults.rate, defaults.count, defaults.routing_key) == (0.5, 0, "rk")
    assert (given.rate, given.count, given.routing_key) == (500.0, 7, "k")


def test_an_unreachable_broker_is_retried_and_every_message_published_once_it_is_back(
    rabbitmq_url, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="data_source")
    address = urlsplit(rabbitmq_url)
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 5672)
    proxy.cut()  # the broker is down when data_source starts
    via_proxy = address._replace(netloc=address.netloc.rsplit(":", 1)[0] + f":{proxy.port}")
    routing_key = f"test.{uuid.uuid4().hex}"
    stop = asyncio.Event()
    monkeypatch.setattr(data_source_main, "stop_on_signals", lambda: stop)
    args = data_source_main.parse_args(["--rate", "100", "--count", "5", "--run", "t"])
    args = data_source_main.with_defaults(args, settings_for(urlunsplit(via_proxy)))
    args.routing_key = routing_key

    async def go() -> tuple[int, int]:
        async with await aio_pika.connect(rabbitmq_url) as connection:
            channel = await connection.channel()
            exchange = await declare_sensor_exchange(channel)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key=routing_key)
            loop = asyncio.get_running_loop()
            loop.call_later(3.0, proxy.restore)  # back after a while
            sent = await asyncio.wait_for(
                data_source_main.run(args, settings_for(urlunsplit(via_proxy))), 60
            )
            got = []
            while (message := await queue.get(fail=False, timeout=5)) is not None:
                got.append(message.message_id)
                await message.ack()
            return sent, len(got)

    try:
        sent, queued = asyncio.run(go())
    finally:
        proxy.cut()

    assert (sent, queued) == (5, 5)
    retries = [r.getMessage() for r in caplog.records if "cannot publish" in r.getMessage()]
    assert len(retries) == 1  # two failed tries or more, said once


class FakeMlData:
    """ml_data_api as data_source asks it: one use case's definition."""

    def __init__(self, *_: object) -> None:
        pass

    async def use_case(self, name: str):
        from gits_ml.demo import PRODUCT_QUALITY

        if name != PRODUCT_QUALITY.name:
            from gits_common import errors

            raise errors.NotFound(f"no use case {name}")
        return PRODUCT_QUALITY

    async def close(self) -> None:
        pass


def test_a_csv_file_is_published_with_its_own_ids_and_values(monkeypatch, tmp_path):
    from gits_ml.demo import PRODUCT_QUALITY

    monkeypatch.setattr(data_source_main, "MlDataClient", FakeMlData)
    rows = generate(DEMO).production.iloc[:20][["message_id", *PRODUCT_QUALITY.feature_names]]
    path = tmp_path / "readings.csv"
    rows.to_csv(path, index=False)
    args = data_source_main.with_defaults(
        data_source_main.parse_args(["--csv", str(path), "--routing-key", "k"]),
        settings_for("amqp://unused"),
    )

    stream = list(asyncio.run(data_source_main.stream_of(args, settings_for("amqp://unused"))))

    assert [message_id for message_id, _ in stream] == rows["message_id"].tolist()
    first = stream[0][1]
    assert first["routing_key"] == "k" and first["use_case"] == PRODUCT_QUALITY.name
    assert first["features"] == {f: float(rows.iloc[0][f]) for f in PRODUCT_QUALITY.feature_names}


def test_a_use_case_without_a_file_or_a_file_that_does_not_fit_is_refused(monkeypatch, tmp_path):
    from gits_common import errors

    monkeypatch.setattr(data_source_main, "MlDataClient", FakeMlData)
    settings = settings_for("amqp://unused")
    no_file = data_source_main.with_defaults(
        data_source_main.parse_args(["--use-case", "pumps"]), settings
    )
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    bad_file = data_source_main.with_defaults(
        data_source_main.parse_args(["--csv", str(wrong)]), settings
    )

    with pytest.raises(errors.InvalidInput, match="give --csv for pumps"):
        asyncio.run(data_source_main.stream_of(no_file, settings))
    with pytest.raises(errors.InvalidInput, match=r"wrong\.csv has no column"):
        asyncio.run(data_source_main.stream_of(bad_file, settings))
