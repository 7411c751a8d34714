"""Model-change events survive a lost broker: reported while it is gone, sent once back."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from yarl import URL

from gits_common.amqp import ModelChanged
from queue_manager.app import create_app
from queue_manager.events import ModelEvents
from tests.queue_manager.conftest import bind, upload
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def proxy(rabbitmq_url: str) -> Iterator[TcpProxy]:
    target = URL(rabbitmq_url)
    tcp = TcpProxy(target.host or "127.0.0.1", target.port or 5672)
    tcp.restore()
    yield tcp
    tcp.cut()


def via(proxy: TcpProxy, url: str) -> str:
    return str(URL(url).with_port(proxy.port))


def test_a_binding_made_while_rabbitmq_is_lost_is_announced_once_it_is_back(
    settings, auth, broker, proxy
):
    service = broker.service_name()
    listener = broker.listen(service)
    app = create_app(dataclasses.replace(settings, amqp_url=via(proxy, settings.amqp_url)))
    with TestClient(app, headers=auth) as client:
        upload(client, "demo")
        upload(client, "demo")
        assert bind(client, service, "demo", 1).json()["announced"] is True

        proxy.cut()  # the open connection dies under the app
        during = bind(client, service, "demo", 2)

        proxy.restore()
        after = bind(client, service, "demo", 2)

    assert during.status_code == 200
    assert during.json()["announced"] is False
    assert after.json()["announced"] is True
    assert [e.version for e in broker.events(listener)] == [1, 2]


def test_a_connection_that_died_since_its_last_use_is_replaced_without_a_failure(
    rabbitmq_url, broker, proxy
):
    service = broker.service_name()
    listener = broker.listen(service)
    events = ModelEvents(via(proxy, rabbitmq_url), timeout=5)

    async def announce_twice_across_a_restart() -> tuple[bool, bool]:
        first = await events.announce(
            ModelChanged(service=service, algorithm="a", version=1, sha256="x")
        )
        proxy.cut()
        proxy.restore()
        await asyncio.sleep(0.1)  # the old connection notices it was dropped, or not
        second = await events.announce(
            ModelChanged(service=service, algorithm="a", version=2, sha256="y")
        )
        await events.close()
        return first, second

    assert asyncio.run(announce_twice_across_a_restart()) == (True, True)
    assert [e.version for e in broker.events(listener)] == [1, 2]
