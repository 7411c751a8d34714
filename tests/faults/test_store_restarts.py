"""The broker and the database restarted under a stream: every confirmed message is
stored once, workers consume again by themselves, and while PostgreSQL is away the APIs
answer 503 and the workers hold their messages and retry.

These restart the machine's real RabbitMQ and PostgreSQL (as `scripts/ensure-services.sh`
runs them); other tests' connections are opened per test, so none is left dead."""

from __future__ import annotations

import subprocess
import time

import httpx
import psycopg2
import pytest

from gits_common.amqp import dead_letter_queue
from tests.amqp_helpers import drain, wait_until
from tests.faults.conftest import (
    consumers,
    frozen,
    held_by,
    publish_many,
    queue_state,
    rabbitmqctl,
    stored,
    wait_for_consumers,
)
from tests.faults.test_worker_kills import job_counts, many_messages

MESSAGES = 1_500  # mid-stream at 300 stored: enough to stop a store under load
# What issue #11 allows a worker to take to consume again after the broker is back.
RECONNECT_SECONDS = 30


def postgres_cluster() -> tuple[str, str]:
    """(version, name) of the machine's first PostgreSQL cluster (pg_lsclusters)."""
    out = subprocess.run(["pg_lsclusters", "-h"], check=True, capture_output=True, text=True)
    version, name, *_ = out.stdout.split()
    return version, name


def pg_ctlcluster(action: str) -> None:
    """Start or stop (fast: sessions are cut, as in a crash of their clients' view) the
    machine's PostgreSQL."""
    version, name = postgres_cluster()
    extra = ["-m", "fast"] if action == "stop" else []
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action, *extra],
        check=True,
        capture_output=True,
        timeout=120,
    )


def all_stored_once(pg, platform, messages: list[dict]) -> None:
    """Every message is one production row and one finished job; nothing dead-lettered."""
    wait_until(lambda: stored(pg, platform)[0] >= len(messages), timeout=240, every=0.5)
    wait_until(lambda: queue_state(platform.service)["messages"] == 0, timeout=60, every=0.5)
    wait_until(lambda: job_counts(platform)["finished"] == len(messages), timeout=60, every=0.5)
    assert stored(pg, platform) == (len(messages), len(messages))
    assert job_counts(platform) == {
        "queued": 0,
        "processing": 0,
        "finished": len(messages),
        "failed": 0,
    }
    assert drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=0.5) == []


@pytest.mark.slow
def test_a_rabbitmq_restart_mid_stream_loses_no_confirmed_message(platform, pg):
    # Given two consuming workers and fifteen hundred confirmed messages on their way
    platform.start_worker()
    platform.start_worker()
    wait_for_consumers(platform.service, 2)
    messages = many_messages(MESSAGES)
    with frozen(platform.workers):  # the whole stream queued before they take from it
        publish_many(platform.amqp_url, platform.routing_key, messages)
    wait_until(lambda: stored(pg, platform)[0] >= 300, timeout=120, every=0.05)

    # When RabbitMQ stops mid-stream (the workers held still while rabbitmqctl stops it,
    # which takes longer than they need for the rest of the stream), a third worker
    # starts while it is down, and then the broker comes back
    try:
        with frozen(platform.workers):
            at_stop = stored(pg, platform)[0]
            rabbitmqctl("stop_app")
        late = platform.start_worker()
        time.sleep(2)
        assert late.poll() is None, "a worker started without a broker must wait for one"
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
    back = time.monotonic()

    # Then all three consume again within 30 s, by themselves
    wait_until(lambda: consumers(platform.service) == 3, timeout=RECONNECT_SECONDS, every=0.5)
    reconnected = time.monotonic() - back
    # And every confirmed message is stored once, its job finished
    assert at_stop < MESSAGES
    all_stored_once(pg, platform, messages)
    print(f"stopped at {at_stop} rows; 3 consumers again {reconnected:.1f} s after the restart")


@pytest.mark.slow
def test_a_postgresql_restart_mid_stream_answers_503_and_loses_nothing(platform, pg, postgres_dsn):
    # Given two consuming workers and fifteen hundred messages on their way
    platform.start_worker()
    platform.start_worker()
    wait_for_consumers(platform.service, 2)
    messages = many_messages(MESSAGES)
    with frozen(platform.workers):  # the whole stream queued before they take from it
        publish_many(platform.amqp_url, platform.routing_key, messages)
    wait_until(lambda: stored(pg, platform)[0] >= 300, timeout=120, every=0.05)
    pg.close()

    # When PostgreSQL stops mid-stream (the workers held still while it stops)
    try:
        with frozen(platform.workers):
            pg_ctlcluster("stop")
        # Then ml_data_api answers 503 (with Retry-After), not 500
        with platform.http("ml_data_api") as ml:
            counts = ml.get(f"/ml_data_api/use_cases/{platform.use_case.name}/counts")
            rows = ml.get(
                f"/ml_data_api/use_cases/{platform.use_case.name}/production/rows",
                params={"last": 1},
            )
        assert counts.status_code == 503, counts.text
        assert rows.status_code == 503, rows.text
        assert counts.headers["retry-after"]
        # And the workers hold their messages (nothing acked, nothing dead-lettered)
        time.sleep(3)
        assert all(worker.poll() is None for worker in platform.workers)
        # (asked of their channels: a quorum queue's own counts lag by up to 5 s)
        assert sum(held_by(worker.pid) for worker in platform.workers) > 0
    finally:
        pg_ctlcluster("start")

    # And once it is back, every message is stored once, its job finished
    with httpx.Client(timeout=5) as client:
        wait_until(
            lambda: client.get(f"{platform.apis['ml_data_api']}/health").status_code == 200,
            timeout=60,
            every=0.5,
        )
    fresh = psycopg2.connect(postgres_dsn)
    fresh.autocommit = True
    try:
        all_stored_once(fresh, platform, messages)
    finally:
        fresh.close()
