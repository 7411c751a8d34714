"""A model that cannot be used never stops a worker (issue #10's "done when"): a file
planted behind queue_manager's checks, straight into its store, is bound in a running
platform; the workers stay up, the messages are dead-lettered with the reason (on their
jobs and in the dead letter's header), the service shows the model as unusable, and
rebinding to a good model lets the replayed messages through."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from gits_common.amqp import REASON_HEADER, dead_letter_queue
from gits_common.registry import ModelCheck
from gits_common.schemas import Task
from queue_manager.schemas import AlgorithmCreate
from tests.amqp_helpers import drain, publish, wait_until
from tests.workers.conftest import ROOT, demo_messages


def plant(queue_manager_app: Any, name: str, use_case: str, content: bytes) -> int:
    """Store a model file the way queue_manager would, without its checks; its version."""
    fields = AlgorithmCreate(name=name, use_case=use_case, task=Task.regression)
    check = ModelCheck(features=["T_data_1_1"], output="-", rows=0, rows_from="schema", seconds=0)
    db = queue_manager_app.state.queue_manager.db
    algorithm = db.run(
        lambda docs: docs.insert_algorithm(
            fields=fields,
            content=io.BytesIO(content),
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
            check=check,
            now=datetime.now(UTC),
        )
    )
    return int(algorithm.version)


def statuses(platform: Any) -> list[str]:
    return sorted(job["last_status"] for job in platform.jobs())


def test_a_planted_unloadable_model_dead_letters_with_reasons_and_a_rebinding_recovers(
    platform, pg, queue_manager_app
):
    # Given a text file planted as version 2 behind queue_manager's checks, and bound
    name = platform.use_case.name
    assert plant(queue_manager_app, name, name, b"hello\n") == 2
    platform.bind(2)
    workers = [platform.start_worker(), platform.start_worker()]

    # When messages arrive
    messages = demo_messages(20, prefix="planted-")
    publish(platform.amqp_url, platform.routing_key, messages)

    # Then every job fails with the reason, the workers stay up, and the dead letters
    # carry the reason too
    wait_until(lambda: statuses(platform) == ["failed"] * 20, timeout=90)
    assert all(w.poll() is None for w in workers)
    reasons = {job["message"] for job in platform.jobs()}
    assert len(reasons) == 1
    (reason,) = reasons
    assert f"model {name}:2 cannot be used" in reason
    assert "not a loadable model file" in reason
    dead = drain(platform.amqp_url, dead_letter_queue(platform.service), timeout=3)
    assert len(dead) == 20
    assert {m.headers[REASON_HEADER] for m in dead} == {reason}
    assert all(json.loads(m.body)["message_id"].startswith("planted-") for m in dead)
    # And the service shows its model as unusable, with the reason
    with platform.http("queue_manager") as qm:
        status = qm.get(f"/queue_manager/services/{platform.service}").json()["model_status"]
    assert status["usable"] is False
    assert status["version"] == 2
    assert "not a loadable model file" in status["reason"]

    # When the service is rebound to the good version and the dead letters replayed
    platform.bind(1)
    publish(platform.amqp_url, platform.routing_key, [m.body for m in dead])

    # Then the replayed messages go through, with the same workers
    wait_until(lambda: statuses(platform) == ["finished"] * 20, timeout=90)
    assert len(platform.production(pg)) == 20
    assert all(w.poll() is None for w in workers)
    with platform.http("queue_manager") as qm:
        status = qm.get(f"/queue_manager/services/{platform.service}").json()["model_status"]
    assert status["usable"] is True and status["version"] == 1


def test_replaying_dead_letters_after_a_rebinding_lets_them_through(
    platform, pg, queue_manager_app
):
    # Given messages dead-lettered by a planted model that is not a model at all
    name = platform.use_case.name
    version = plant(queue_manager_app, name, name, b"\x80\x04N.")  # pickle of None
    platform.bind(version)
    platform.start_worker()
    publish(platform.amqp_url, platform.routing_key, demo_messages(5, prefix="replay-"))
    wait_until(lambda: statuses(platform) == ["failed"] * 5, timeout=90)
    assert "holds a NoneType, not a model" in platform.jobs()[0]["message"]

    # When the service is rebound and the dead letters replayed with the workers' command
    platform.bind(1)
    replay = subprocess.run(
        [sys.executable, "-m", "workers", "--replay-dead-letters"],
        cwd=ROOT,
        env=platform.worker_env(),
        capture_output=True,
        timeout=60,
    )

    # Then they are stored
    assert replay.returncode == 0, replay.stderr
    wait_until(lambda: statuses(platform) == ["finished"] * 5, timeout=90)
    assert len(platform.production(pg)) == 5


def test_a_planted_file_that_would_run_code_never_runs_in_a_worker(
    platform, queue_manager_app, tmp_path
):
    # Given a pickle that would write a marker, planted straight into the store (so
    # queue_manager's upload check never saw it), and bound
    marker = tmp_path / "marker"
    name = platform.use_case.name
    evil = pickle.dumps(Calls(os.system, f"touch {marker}"))
    platform.bind(plant(queue_manager_app, name, name, evil))
    worker = platform.start_worker()

    # When a message arrives, Then it is dead-lettered with the reason and nothing ran
    publish(platform.amqp_url, platform.routing_key, demo_messages(1, prefix="evil-"))
    wait_until(lambda: statuses(platform) == ["failed"], timeout=90)
    assert "(safety)" in platform.jobs()[0]["message"]
    assert "system" in platform.jobs()[0]["message"]
    assert not marker.exists()
    assert worker.poll() is None


class Calls:
    """A pickle that calls `function(*args)` when loaded."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.function, self.args)
