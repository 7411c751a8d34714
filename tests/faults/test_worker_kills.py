"""Worker replicas SIGKILLed while four thousand messages are in flight lose nothing and
store nothing twice: what they held unsettled, RabbitMQ delivers again, and the second
write of a prediction already stored is a no-op."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from gits_common.amqp import dead_letter_queue
from tests.amqp_helpers import drain, wait_until
from tests.faults.conftest import (
    Insert,
    frozen,
    kill_holding,
    pid_of_client,
    publish_many,
    queue_state,
    stored,
    stored_ids,
    wait_for_consumers,
)
from tests.workers.conftest import demo_messages

# Enough for each kill to land mid-stream with batches in the workers' hands (the kills
# come at a fifth and at half of them); ten thousand proved no more and took 3 minutes.
MESSAGES = 4_000


def many_messages(n: int) -> list[dict]:
    """n messages with distinct ids: the demo's 3,000 production readings, again and again."""
    out: list[dict] = []
    for round_ in range(n // 3000 + 1):
        out += demo_messages(min(3000, n - len(out)), prefix=f"r{round_}-")
    return out


def job_counts(platform) -> dict[str, int]:
    with platform.http("queue_manager") as qm:
        response = qm.get("/queue_manager/jobs/counts", params={"service": platform.service})
    response.raise_for_status()
    return response.json()


@pytest.mark.slow
def test_two_workers_killed_mid_stream_lose_nothing_and_store_nothing_twice(platform, pg, tap):
    # Given two consuming worker replicas and four thousand messages on their way
    began = time.monotonic()
    first, second = platform.start_worker(), platform.start_worker()
    wait_for_consumers(platform.service, 2)
    messages = many_messages(MESSAGES)
    with frozen(platform.workers):  # the whole stream queued before they take from it
        publish_many(platform.amqp_url, platform.routing_key, messages)
    published = time.monotonic() - began

    # When the first is SIGKILLed at an arbitrary moment of the stream (a replacement is
    # started, as supervisord would)...
    # (the others held still meanwhile: they would finish the stream while the broker
    # is asked what the first held)
    wait_until(lambda: stored(pg, platform)[0] >= MESSAGES // 5, timeout=120, every=0.05)
    with frozen(platform.workers):
        held_first = kill_holding(first)
        at_first_kill = stored(pg, platform)[0]
    platform.start_worker()

    # ...and the second the moment ml_data_api has stored a batch of its predictions,
    # before it could ack them (the worst moment for duplicates)
    wait_until(lambda: stored(pg, platform)[0] >= MESSAGES // 2, timeout=120, every=0.1)
    second_frozen = threading.Event()

    def freeze_after_its_store(insert: Insert) -> None:
        if insert.stored and pid_of_client(insert.client_port, [second]) == second.pid:
            os.kill(second.pid, signal.SIGSTOP)
            tap.after = None
            second_frozen.set()

    tap.after = freeze_after_its_store
    assert second_frozen.wait(timeout=60), "the second worker stored nothing more"
    with frozen(platform.workers):
        held_second = kill_holding(second)
        at_second_kill = stored(pg, platform)[0]
    platform.start_worker()

    # Then every message becomes a production row, and no row or job is there twice
    wait_until(lambda: stored(pg, platform)[0] >= MESSAGES, timeout=240, every=0.5)
    wait_until(lambda: queue_state(platform.service)["messages"] == 0, timeout=60, every=0.5)
    wait_until(lambda: job_counts(platform)["finished"] == MESSAGES, timeout=60, every=0.5)
    took = time.monotonic() - began
    rows, distinct = stored(pg, platform)
    assert rows == distinct == MESSAGES
    assert stored_ids(pg, platform) == {m["message_id"] for m in messages}
    assert job_counts(platform) == {
        "queued": 0,
        "processing": 0,
        "finished": MESSAGES,
        "failed": 0,
    }
    assert drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=0.5) == []

    # And the kills really came mid-stream, with deliveries in the workers' hands: the
    # broker delivered those again (x-delivery-count 1 or more), and the predictions
    # stored before the second kill were sent again and taken as the no-ops they are
    assert at_first_kill < at_second_kill < MESSAGES
    assert held_first > 0 and held_second > 0
    sent = tap.sent()
    again = sum(n - 1 for n in sent.values())
    assert again > 0
    # Every prediction sent again was a no-op. The tap may also have missed the first
    # write of a few (a worker killed while its request was being taken; seen: 2 of 2,600
    # with three batches in flight), whose second write is then skipped too.
    assert again <= tap.skipped() <= again + 10
    print(
        f"{MESSAGES} messages published in {published:.1f} s, all stored in {took:.1f} s; "
        f"killed at {at_first_kill} and {at_second_kill} rows stored, holding "
        f"{held_first} and {held_second} unsettled deliveries (redelivered); "
        f"{again} predictions sent twice, each second write skipped"
    )
