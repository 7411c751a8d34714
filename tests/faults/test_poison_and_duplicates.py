"""A message that kills its worker every time it is scored ends in the dead-letter queue
with the reason once RabbitMQ has delivered it up to the limit, and the other messages
flow meanwhile; the same message id published twice through the broker is stored once."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from gits_common.amqp import DELIVERY_LIMIT, dead_letter_queue
from tests.amqp_helpers import drain, publish, wait_until
from tests.faults.conftest import (
    Insert,
    pid_of_client,
    publish_many,
    queue_state,
    stored,
    stored_ids,
)
from tests.faults.test_worker_kills import job_counts
from tests.workers.conftest import demo_messages

POISON = "poison"


class Supervisor:
    """Starts a replacement for every worker that died, as supervisord does under
    `make run`, until stopped."""

    def __init__(self, platform) -> None:
        self.platform = platform
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for worker in list(self.platform.workers):
                if worker.poll() is not None and not getattr(worker, "replaced", False):
                    worker.replaced = True
                    self.restarts += 1
                    self.platform.start_worker()


@pytest.mark.slow
def test_a_message_that_kills_its_worker_every_time_is_dead_lettered_at_the_limit(
    platform, pg, tap
):
    # Given a message whose scoring kills the worker process every time (here: the
    # worker is SIGKILLed the moment it sends that message's prediction)
    platform.start_worker()
    platform.start_worker()

    def kill_its_sender(insert: Insert) -> bool:
        if POISON not in insert.message_ids:
            return False
        pid = pid_of_client(insert.client_port, platform.workers)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return True

    tap.before = kill_its_sender
    poison = {**demo_messages(1, start=2999)[0], "message_id": POISON}
    messages = demo_messages(400)

    with Supervisor(platform) as supervisor:
        # When it is published among 400 good ones
        publish_many(platform.amqp_url, platform.routing_key, [*messages[:200], poison])
        publish_many(platform.amqp_url, platform.routing_key, messages[200:])

        # Then it ends in the dead-letter queue with the reason, after the delivery limit
        dlq = dead_letter_queue(platform.service)
        wait_until(lambda: queue_state(dlq)["messages"] >= 1, timeout=180, every=0.5)
        # And the others are all stored, once
        wait_until(lambda: stored(pg, platform)[0] >= len(messages), timeout=120, every=0.5)
        kills = supervisor.restarts
    dead = drain(platform.amqp_url, dlq, timeout=0.5)

    assert [m.message_id for m in dead] == [POISON]
    reason = dead[0].headers["x-gits-reason"]
    assert f"delivered {DELIVERY_LIMIT - 1} times before" in reason
    assert stored(pg, platform) == (len(messages), len(messages))
    assert POISON not in stored_ids(pg, platform)
    assert 1 <= kills <= DELIVERY_LIMIT
    jobs = {job["message_id"]: job for job in platform.jobs()}
    assert jobs[POISON]["last_status"] == "failed"
    assert "delivered" in jobs[POISON]["message"]
    assert job_counts(platform)["finished"] == len(messages)


def test_the_same_message_id_published_twice_is_stored_once(platform, pg):
    # Given a worker
    platform.start_worker()
    messages = demo_messages(30)

    # When each message is published twice through the broker, the second copies later
    # and some within one batch of the first
    publish(platform.amqp_url, platform.routing_key, messages + messages[:5])
    wait_until(lambda: job_counts(platform)["finished"] == 30, timeout=60)
    publish(platform.amqp_url, platform.routing_key, messages)
    wait_until(lambda: queue_state(platform.service)["messages"] == 0, timeout=60)

    # Then each is one production row and one finished job; nothing is dead-lettered
    assert stored(pg, platform) == (30, 30)
    assert job_counts(platform) == {"queued": 0, "processing": 0, "finished": 30, "failed": 0}
    assert drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=0.5) == []
