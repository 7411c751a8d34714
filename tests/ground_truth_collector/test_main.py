"""`python -m ground_truth_collector` waits for its use case while ml_data_api is not up
or has not registered it yet, says so once and then every half minute, and stops waiting
when it is stopped."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_ml.demo import PRODUCT_QUALITY
from ground_truth_collector import __main__ as collector_main
from ml_data_api.app import create_app
from ml_data_api.settings import load_settings
from tests.conftest import LiveServer, free_port


@pytest.fixture(scope="module")
def api_url(postgres_dsn):
    with LiveServer(create_app(load_settings())) as server:
        yield server.url


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(collector_main, "POLL_SECONDS", 0.2)


def waits(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for")]


def test_the_collector_waits_for_a_use_case_registered_later(api_url, api_token, caplog):
    caplog.set_level(logging.INFO, logger="ground_truth_collector")
    name = f"gt_wait_{uuid.uuid4().hex[:8]}"

    async def go():
        client = MlDataClient(api_url, api_token)
        try:
            waiting = asyncio.create_task(collector_main._registered(client, name, asyncio.Event()))
            await asyncio.sleep(1.0)
            await client.register_use_case(PRODUCT_QUALITY.model_copy(update={"name": name}))
            return await asyncio.wait_for(waiting, 10)
        finally:
            await client.close()

    use_case = asyncio.run(go())

    assert use_case is not None and use_case.name == name
    # About five polls were refused (404), and that was said once.
    assert len(waits(caplog)) == 1
    assert waits(caplog)[0].startswith(f"waiting for use case {name}: ml_data_api answered 404")


def test_a_stop_ends_the_wait_for_an_unreachable_api_at_once(api_token, caplog):
    caplog.set_level(logging.INFO, logger="ground_truth_collector")

    async def go():
        client = MlDataClient(f"http://127.0.0.1:{free_port()}", api_token)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        started = time.monotonic()
        try:
            return await collector_main._registered(client, "product_quality", stop), (
                time.monotonic() - started
            )
        finally:
            await client.close()

    use_case, seconds = asyncio.run(go())

    assert use_case is None
    assert seconds < 1.5
    assert len(waits(caplog)) == 1
    assert "ml_data_api unreachable" in waits(caplog)[0]


def test_an_error_that_waiting_cannot_fix_is_raised_at_once(api_url):
    async def go():
        client = MlDataClient(api_url, "not-the-token")
        try:
            return await collector_main._registered(client, "product_quality", asyncio.Event())
        finally:
            await client.close()

    started = time.monotonic()
    with pytest.raises(errors.GitsError) as raised:
        asyncio.run(go())

    assert not isinstance(raised.value, (errors.NotFound, errors.Unavailable))
    assert time.monotonic() - started < 5
