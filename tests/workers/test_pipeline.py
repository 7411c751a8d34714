"""Messages flow from RabbitMQ through worker replicas into the production table, with
every job recorded: the behaviour issue #3 promises, through the real broker and
PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gits_common.amqp import dead_letter_queue
from gits_common.settings import config
from gits_ml import modeling
from gits_ml.demo import PRODUCT_QUALITY
from tests.amqp_helpers import drain, publish, wait_until
from tests.tcp_proxy import TcpProxy
from tests.workers.conftest import DEMO, ROOT, demo_messages

VHOST = config("RABBITMQ_VHOST", default="/")


def finished(platform) -> int:
    return sum(job["last_status"] == "finished" for job in platform.jobs())


def expected_predictions(content: bytes, messages: list[dict]) -> dict[str, float]:
    pipeline = modeling.from_bytes(content)
    frame = DEMO.production.set_index("message_id").loc[[m["message_id"] for m in messages]]
    predicted = pipeline.predict(frame[PRODUCT_QUALITY.feature_names])
    return dict(zip(frame.index, predicted, strict=True))


def test_every_message_becomes_one_prediction_and_one_finished_job(platform, pg, model_files):
    # Given a worker, when 150 messages are published
    platform.start_worker()
    messages = demo_messages(150)
    publish(platform.amqp_url, platform.routing_key, messages)

    # Then there are 150 predictions, each the model's own output for its row
    wait_until(lambda: finished(platform) == 150, timeout=60)
    rows = platform.production(pg)
    assert len(rows) == 150
    expected = expected_predictions(model_files[1], messages)
    for message_id, prediction, version in rows:
        assert prediction == pytest.approx(expected[message_id], rel=1e-9)
        assert version == f"{platform.use_case.name}:1"
    job = platform.jobs()[0]
    assert job["model_version"] == f"{platform.use_case.name}:1"
    assert job["metadata"]["routing_key"] == platform.routing_key
    assert job["metadata"]["time_elapsed_sec"] >= 0
    assert job["result"][0]["prediction"] == pytest.approx(expected[job["message_id"]])


def test_two_replicas_share_the_work_and_handle_each_message_once(platform, pg):
    first, second = platform.start_worker(), platform.start_worker()
    # both consuming first: a replica's prefetch (WORKER_PREFETCH) could hold all 600
    wait_until(
        lambda: all(" consuming " in platform.log_of(w) for w in (first, second)), timeout=60
    )
    publish(platform.amqp_url, platform.routing_key, demo_messages(600))

    wait_until(lambda: finished(platform) == 600, timeout=90)
    logs = platform.stop_workers()

    workers = {job["metadata"]["worker"] for job in platform.jobs()}
    assert len(workers) == 2
    handled = [int(log.split("handled ")[1].split()[0]) for log in logs]
    assert sum(handled) == 600  # no message handled twice
    assert all(n > 0 for n in handled)
    assert len(platform.production(pg)) == 600
    assert first.returncode == second.returncode == 0


def test_poison_messages_are_dead_lettered_with_a_reason_and_the_worker_goes_on(platform, pg):
    good = demo_messages(2)
    missing = demo_messages(1, start=10)[0]
    del missing["features"]["T_data_2_2"]
    text = demo_messages(1, start=11)[0]
    text["features"]["H_data"] = "humid"
    batch_form = {"message_id": "batch-no-features", "records": [{"timestamp": "2025-01-01"}]}
    platform.start_worker()

    publish(
        platform.amqp_url,
        platform.routing_key,
        [good[0], b"{not json", missing, text, batch_form, good[1]],
    )

    wait_until(lambda: len(platform.jobs()) == 6, timeout=60)
    wait_until(lambda: {j["last_status"] for j in platform.jobs()} <= {"finished", "failed"})
    jobs = {job["message_id"]: job for job in platform.jobs()}
    reasons = sorted(j["message"] for j in jobs.values() if j["last_status"] == "failed")
    assert len(reasons) == 4
    assert any("not JSON" in r for r in reasons)
    assert any("missing feature 'T_data_2_2'" in r for r in reasons)
    assert any("feature 'H_data'" in r and "valid number" in r for r in reasons)
    assert any("records.0.features" in r for r in reasons)
    assert jobs[good[1]["message_id"]]["last_status"] == "finished"
    dead = drain(platform.amqp_url, dead_letter_queue(platform.service))
    assert len(dead) == 4
    assert {m.body for m in dead} >= {b"{not json"}
    assert len(platform.production(pg)) == 2


@pytest.mark.parametrize("good_first", [True, False], ids=["good copy first", "bad copy first"])
def test_two_messages_with_one_id_leave_a_job_that_says_what_was_stored(platform, pg, good_first):
    # Found by breaking it: a valid message and an invalid one with the same id. The row
    # of the valid one is stored, the invalid one is dead-lettered with its reason, and
    # the job must say "finished" with the stored message's payload, whatever the order.
    good = demo_messages(1)[0]
    bad = {**good, "features": {**good["features"], "T_data_1_1": "x"}}
    dead: list = []

    def dead_letters() -> int:
        dead.extend(drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=0.2))
        return len(dead)

    def stored() -> int:
        return len(platform.production(pg))

    platform.start_worker()
    # one after the other, so that the two are never in one batch
    for copy, done in (
        ((good, stored), (bad, dead_letters))
        if good_first
        else (
            (bad, dead_letters),
            (good, stored),
        )
    ):
        publish(platform.amqp_url, platform.routing_key, [copy])
        wait_until(lambda done=done: done() == 1, timeout=60)

    wait_until(lambda: [j["last_status"] for j in platform.jobs()] == ["finished"], timeout=30)
    (job,) = platform.jobs()
    assert job["payload"]["features"]["T_data_1_1"] == good["features"]["T_data_1_1"]
    assert stored() == 1 and dead_letters() == 1
    assert "valid number" in dead[0].headers["x-gits-reason"]


def test_rebinding_switches_the_model_for_the_next_messages(platform, pg, model_files):
    platform.start_worker()
    before = demo_messages(20)
    publish(platform.amqp_url, platform.routing_key, before)
    wait_until(lambda: finished(platform) == 20, timeout=60)

    platform.upload(model_files[2])
    bound = platform.bind(2)
    assert bound["announced"] is True
    time.sleep(1.0)  # the change event reaches the worker
    after = demo_messages(20, start=100)
    publish(platform.amqp_url, platform.routing_key, after)

    wait_until(lambda: finished(platform) == 40, timeout=60)
    rows = {mid: (pred, version) for mid, pred, version in platform.production(pg)}
    expected = expected_predictions(model_files[2], after)
    for message in after:
        prediction, version = rows[message["message_id"]]
        assert version == f"{platform.use_case.name}:2"
        assert prediction == pytest.approx(expected[message["message_id"]], rel=1e-9)
    old = [rows[m["message_id"]][0] for m in before]
    assert np.mean([rows[m["message_id"]][0] for m in after]) > np.mean(old) + 50


def test_a_deleted_service_takes_its_queue_and_its_workers_wait_for_it(platform):
    # Given a worker that has handled a message
    worker = platform.start_worker(WORKER_BINDING_REFRESH_SECONDS="0.5")
    publish(platform.amqp_url, platform.routing_key, demo_messages(1))
    wait_until(lambda: finished(platform) == 1, timeout=60)

    # When its service is deleted (its queue is empty)
    with platform.http("queue_manager") as qm:
        assert qm.delete(f"/queue_manager/services/{platform.service}").status_code == 204

    # Then the worker does not stop: it waits for its service to exist again
    wait_until(lambda: "waiting for service" in platform.log_of(worker), timeout=60)
    assert worker.poll() is None


def test_a_model_file_altered_at_rest_is_refused_and_its_messages_dead_lettered(
    platform, pg, queue_manager_app
):
    # Given a byte of the stored model file flipped after upload (its SHA-256 record not)
    # (model files are stored once per content: the test puts the byte back afterwards,
    # for the other tests' services use the same file)
    schema = queue_manager_app.state.queue_manager.db.schema
    flip = (
        f'UPDATE "{schema}".model_files SET content = overlay(content placing '
        "set_byte(substring(content from length(content) / 2 for 1), 0, "
        "255 - get_byte(content, length(content) / 2 - 1)) from length(content) / 2 for 1) "
        f'WHERE sha256 = (SELECT sha256 FROM "{schema}".algorithms '
        "WHERE name = %s AND version = 1)"
    )
    with pg.cursor() as cur:
        cur.execute(flip, (platform.use_case.name,))
        assert cur.rowcount == 1
    try:
        altered_at_rest_is_refused(platform, pg)
    finally:
        with pg.cursor() as cur:
            cur.execute(flip, (platform.use_case.name,))  # flipping twice restores it


def altered_at_rest_is_refused(platform, pg):
    # When a worker gets a message
    platform.start_worker()
    publish(platform.amqp_url, platform.routing_key, demo_messages(1))

    # Then it refuses the file, and the message is dead-lettered with that reason
    wait_until(lambda: [j["last_status"] for j in platform.jobs()] == ["failed"], timeout=60)
    assert "does not match its checksum" in platform.jobs()[0]["message"]
    assert len(drain(platform.amqp_url, dead_letter_queue(platform.service))) == 1
    assert platform.production(pg) == []


def test_sigterm_returns_unfinished_messages_and_exits_cleanly(platform, pg):
    worker = platform.start_worker(WORKER_BATCH_SIZE="10", WORKER_PREFETCH="50")
    publish(platform.amqp_url, platform.routing_key, demo_messages(800))
    wait_until(lambda: len(platform.production(pg)) >= 20, timeout=60, every=0.05)

    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)

    assert worker.returncode == 0
    assert "stopped; handled" in platform.log_of(worker)
    assert len(platform.production(pg)) < 800
    platform.start_worker()
    wait_until(lambda: finished(platform) == 800, timeout=120)
    assert len(platform.production(pg)) == 800


@pytest.fixture
def ml_data_proxy(platform):
    port = int(platform.apis["ml_data_api"].rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    proxy.restore()
    yield proxy
    proxy.cut()


def test_a_passing_outage_of_ml_data_api_is_retried_until_it_is_back(platform, pg, ml_data_proxy):
    # Given a worker whose ml_data_api goes away after the model is loaded
    platform.start_worker(
        ML_DATA_API_URL=f"http://127.0.0.1:{ml_data_proxy.port}", WORKER_RETRY_ATTEMPTS="8"
    )
    publish(platform.amqp_url, platform.routing_key, demo_messages(1))
    wait_until(lambda: finished(platform) == 1, timeout=60)
    ml_data_proxy.cut()

    # When messages arrive during the outage, and ml_data_api comes back a bit later
    publish(platform.amqp_url, platform.routing_key, demo_messages(5, start=10))
    time.sleep(2)
    assert len(platform.production(pg)) == 1
    ml_data_proxy.restore()

    # Then they are stored once each, and nothing was dead-lettered
    wait_until(lambda: finished(platform) == 6, timeout=60)
    assert len(platform.production(pg)) == 6
    assert drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=0.5) == []


def test_a_lasting_outage_dead_letters_with_the_reason_and_replay_recovers(platform, pg):
    # Given ml_data_api unreachable for longer than the worker retries
    worker = platform.start_worker(ML_DATA_API_URL="http://127.0.0.1:9", WORKER_RETRY_ATTEMPTS="2")
    publish(platform.amqp_url, platform.routing_key, demo_messages(5))

    # Then the messages wait in the dead-letter queue, their jobs saying why
    wait_until(
        lambda: (
            len(platform.jobs()) == 5 and all(j["last_status"] == "failed" for j in platform.jobs())
        ),
        timeout=60,
    )
    assert "gave up after 2 attempts" in platform.jobs()[0]["message"]
    assert "ml_data_api unreachable" in platform.jobs()[0]["message"]
    assert worker.poll() is None  # the worker survived
    assert platform.production(pg) == []

    # When ml_data_api is reachable again and the dead letters are replayed
    platform.stop_workers()
    platform.start_worker()
    replay = subprocess.run(
        [sys.executable, "-m", "workers", "--replay-dead-letters"],
        cwd=ROOT,
        env={
            **os.environ,
            "SERVICE_NAME": platform.service,
            "QUEUE_MANAGER_URL": platform.apis["queue_manager"],
            "LOG_LEVEL": "INFO",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then every message is stored exactly once and its job finished
    assert replay.returncode == 0, replay.stderr
    assert "replayed 5 dead-lettered message(s)" in replay.stderr
    wait_until(lambda: finished(platform) == 5, timeout=60)
    assert len(platform.production(pg)) == 5


@pytest.fixture
def queue_manager_proxy(platform):
    port = int(platform.apis["queue_manager"].rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    proxy.restore()
    yield proxy
    proxy.cut()


def test_with_queue_manager_down_workers_go_on_and_record_the_jobs_once_it_is_back(
    platform, pg, queue_manager_proxy
):
    # Given a worker that has its model, whose queue_manager then goes away
    worker = platform.start_worker(
        QUEUE_MANAGER_URL=f"http://127.0.0.1:{queue_manager_proxy.port}",
        WORKER_BINDING_REFRESH_SECONDS="1",
    )
    publish(platform.amqp_url, platform.routing_key, demo_messages(1))
    wait_until(lambda: finished(platform) == 1, timeout=60)
    queue_manager_proxy.cut()

    # When messages arrive during the outage
    publish(platform.amqp_url, platform.routing_key, demo_messages(50, start=10))

    # Then they are predicted and stored with the cached model meanwhile
    wait_until(lambda: len(platform.production(pg)) == 51, timeout=60)
    assert finished(platform) == 1  # their jobs wait in the worker's journal
    # And once queue_manager is back, every job is recorded, none lost, none twice
    queue_manager_proxy.restore()
    wait_until(lambda: finished(platform) == 51, timeout=60)
    assert len(platform.jobs()) == 51
    assert worker.poll() is None
    assert drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=0.5) == []
