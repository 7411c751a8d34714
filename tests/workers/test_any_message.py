"""Any message either becomes a stored prediction or a dead letter with its reason, and
no message stops a worker: arbitrary bytes and JSON, mixed with good readings, through
a running worker and the real broker (issue #10)."""

from __future__ import annotations

import json
import signal
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gits_common.amqp import REASON_HEADER, dead_letter_queue
from tests.amqp_helpers import drain, publish, wait_until
from tests.workers.conftest import demo_messages
from tests.workers.test_messages import bodies


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=st.lists(bodies(), min_size=5, max_size=25))
def test_any_message_is_stored_or_dead_lettered_with_a_reason(platform, pg, junk):
    # Given a running worker
    worker = platform.start_worker(WORKER_MAX_MESSAGE_BYTES="2000")
    run = uuid.uuid4().hex[:6]
    good = demo_messages(10, prefix=f"{run}-")
    mixed: list[bytes] = []
    for i, body in enumerate(junk):
        mixed.append(body)
        if i < len(good):
            mixed.append(json.dumps(good[i]).encode())
    mixed += [json.dumps(m).encode() for m in good[len(junk) :]]
    stored_before = len(platform.production(pg))

    # When arbitrary bodies arrive between good readings
    publish(platform.amqp_url, platform.routing_key, mixed)

    # Then every good reading is stored, and the worker settles every delivery
    wait_until(lambda: len(platform.production(pg)) >= stored_before + len(good), timeout=120)
    dead = []
    wait_until(
        lambda: (
            dead.extend(drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=1))
            or len(dead) >= len(junk)
        ),
        timeout=60,
    )
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    log = platform.log_of(worker)
    handled = int(log.split("handled ")[1].split()[0])
    assert worker.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert handled == len(mixed)
    assert len(dead) == len(junk)
    assert all(m.headers.get(REASON_HEADER) for m in dead)
    platform.workers.clear()
