"""Batches in flight, without a broker: a worker handles up to WORKER_BATCHES_IN_FLIGHT
batches at once (one predicts while others are being stored), a message from quarantine
is handled with nothing else in hand, and a stopping worker settles what it holds."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gits_common.amqp import quarantine_queue
from workers.consumer import ROUTING_KEY_HEADER, Consumer, Outlets
from workers.handler import Delivery, Outcome, Settlement
from workers.metrics import WorkerMetrics
from workers.settings import Settings

SERVICE = "svc"


@dataclasses.dataclass
class FakeMessage:
    """The parts of an aio-pika delivery the consumer reads, and how it was settled."""

    message_id: str
    routing_key: str = "svc.data"
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)
    body: bytes = b"{}"
    settled: str | None = None

    async def ack(self) -> None:
        self.settled = "ack"

    async def nack(self, requeue: bool = True) -> None:
        self.settled = "nack"


class SlowHandler:
    """Takes `seconds` a batch and records how many batches it held at once, and what
    else was in hand when it took a quarantined message."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.holding = 0
        self.most = 0
        self.batches: list[list[str]] = []
        self.beside_quarantined: list[int] = []
        self.wedged = False
        self.metrics = WorkerMetrics(SERVICE)  # the consumer counts what it settles

    async def handle(self, deliveries: list[Delivery]) -> list[Settlement]:
        if any(d.routing_key == "from-quarantine" for d in deliveries):
            self.beside_quarantined.append(self.holding)
        self.holding += 1
        self.most = max(self.most, self.holding)
        self.batches.append([d.message_id or "" for d in deliveries])
        await asyncio.sleep(self.seconds)
        self.holding -= 1
        return [Settlement(Outcome.ack)] * len(deliveries)


class NoQueueManager:
    async def service(self, name: str) -> None:
        raise AssertionError("not asked within the test")


def consumer(handler: SlowHandler, *, in_flight: int, batch_size: int) -> Consumer:
    settings = Settings(
        service_name=SERVICE,
        worker_id="w",
        amqp_url="amqp://unused",
        queue_manager_url="http://unused",
        ml_data_api_url="http://unused",
        api_token="t",
        batch_size=batch_size,
        batches_in_flight=in_flight,
        prefetch=(in_flight + 1) * batch_size,
        retry_attempts=1,
        retry_base_delay=0.01,
        max_message_bytes=2**20,
        journal_max_records=10,
        predict_seconds=5.0,
        binding_refresh_seconds=3600.0,
    )
    return Consumer(settings, handler, models=None, queue_manager=NoQueueManager())  # type: ignore[arg-type]


def run(
    handler: SlowHandler,
    fresh: list[FakeMessage],
    suspects: list[FakeMessage] = (),  # type: ignore[assignment]
    *,
    in_flight: int,
    batch_size: int,
) -> None:
    """Feed the messages to a consumer, arriving a little apart, until all are settled."""

    async def main() -> None:
        worker = consumer(handler, in_flight=in_flight, batch_size=batch_size)
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        quarantined: asyncio.Queue[Any] = asyncio.Queue()
        stop, over = asyncio.Event(), asyncio.Event()
        outlets = Outlets(dead=None, quarantine=None)  # type: ignore[arg-type]
        working = asyncio.create_task(worker._work(inbox, quarantined, outlets, stop, over))
        for message in fresh:
            await inbox.put(message)
            await asyncio.sleep(0.001)
        for message in suspects:
            await quarantined.put(message)
        while not all(m.settled for m in [*fresh, *suspects]):
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.wait_for(working, 5)

    asyncio.run(main())


def test_batches_overlap_up_to_the_limit_and_every_message_is_settled():
    handler = SlowHandler(seconds=0.05)
    fresh = [FakeMessage(f"m{i}") for i in range(40)]
    run(handler, fresh, in_flight=3, batch_size=4)
    assert handler.most == 3
    assert all(m.settled == "ack" for m in fresh)
    assert sorted(i for b in handler.batches for i in b) == sorted(m.message_id for m in fresh)
    assert max(len(b) for b in handler.batches) <= 4


def test_one_batch_in_flight_is_the_old_serial_worker():
    handler = SlowHandler(seconds=0.01)
    run(handler, [FakeMessage(f"m{i}") for i in range(10)], in_flight=1, batch_size=3)
    assert handler.most == 1


def test_a_quarantined_message_is_handled_with_nothing_else_in_hand():
    handler = SlowHandler(seconds=0.03)
    fresh = [FakeMessage(f"m{i}") for i in range(20)]
    suspect = FakeMessage(
        "suspect",
        routing_key=quarantine_queue(SERVICE),
        headers={ROUTING_KEY_HEADER: "from-quarantine"},
    )
    run(handler, fresh, [suspect], in_flight=3, batch_size=2)
    assert suspect.settled == "ack"
    assert handler.beside_quarantined == [0]
    assert ["suspect"] in handler.batches


class WedgingHandler(SlowHandler):
    """Wedges (as a model call that never ends does) on the message `wedge`."""

    async def handle(self, deliveries: list[Delivery]) -> list[Settlement]:
        settled = await super().handle(deliveries)
        if any(d.message_id == "wedge" for d in deliveries):
            self.wedged = True
            return [Settlement(Outcome.retry)] * len(deliveries)
        return settled


def test_a_wedged_worker_takes_nothing_more_stops_and_leaves_the_rest_unsettled():
    handler = WedgingHandler(seconds=0.01)
    fresh = [FakeMessage("wedge"), *(FakeMessage(f"m{i}") for i in range(10))]
    suspect = FakeMessage(
        "suspect",
        routing_key=quarantine_queue(SERVICE),
        headers={ROUTING_KEY_HEADER: "from-quarantine"},
    )

    async def main() -> bool:
        worker = consumer(handler, in_flight=1, batch_size=1)
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        quarantined: asyncio.Queue[Any] = asyncio.Queue()
        stop, over = asyncio.Event(), asyncio.Event()
        outlets = Outlets(dead=None, quarantine=None)  # type: ignore[arg-type]
        await inbox.put(fresh[0])
        working = asyncio.create_task(worker._work(inbox, quarantined, outlets, stop, over))
        await asyncio.sleep(0.05)  # the first batch wedges the worker
        for message in fresh[1:]:
            await inbox.put(message)
        await quarantined.put(suspect)
        await asyncio.wait_for(working, 5)  # it ends by itself, with an idle queue too
        return stop.is_set()

    assert asyncio.run(main())
    assert handler.batches == [["wedge"]]  # nothing taken after it, quarantine included
    assert fresh[0].settled == "nack"
    assert all(m.settled is None for m in [*fresh[1:], suspect])  # returned at close


@settings(max_examples=25, deadline=None)
@given(
    count=st.integers(1, 30),
    in_flight=st.integers(1, 4),
    batch_size=st.integers(1, 8),
)
def test_any_mix_of_limits_settles_every_message_once(count, in_flight, batch_size):
    handler = SlowHandler(seconds=0.002)
    fresh = [FakeMessage(f"m{i}") for i in range(count)]
    run(handler, fresh, in_flight=in_flight, batch_size=batch_size)
    handled = [i for b in handler.batches for i in b]
    assert sorted(handled) == sorted(m.message_id for m in fresh)  # each once
    assert handler.most <= in_flight
    assert max(len(b) for b in handler.batches) <= batch_size
