"""A worker replica's log, as a log collector reads it with LOG_FORMAT=json. Needs no
broker or database: the worker waits for its service in a queue_manager that is not
there, which it logs, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_logs_one_json_object_a_line_naming_its_service_and_itself():
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "QUEUE_MANAGER_URL": f"http://127.0.0.1:{unused_port()}",  # nobody answers there
        "WORKER_METRICS_PORT": "0",
        # Never used: the worker asks queue_manager for its service before the broker.
        "RABBITMQ_PASSWORD": "not-the-broker-password-0123456789abcdef",
        "GITS_RUNTIME_TOKEN": "test-runtime-token-not-a-secret-012345678",
    }
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, stderr=log, env=env)
        try:
            deadline = time.monotonic() + 60
            while b"waiting for service" not in _read(log) and worker.poll() is None:
                assert time.monotonic() < deadline, _read(log).decode(errors="replace")
                time.sleep(0.1)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        text = _read(log).decode()

    lines = [json.loads(line) for line in text.splitlines()]
    assert worker.returncode == 0, text
    assert all(line["service"] == "workers" for line in lines), text
    assert all(line["worker"] == f"{socket.gethostname()}-{worker.pid}" for line in lines), text
    messages = [line["message"] for line in lines]
    assert any(m.startswith("waiting for service") for m in messages), messages
    assert any(m.endswith("stopped; handled 0 messages") for m in messages), messages


def _read(log: IO[bytes]) -> bytes:
    log.seek(0)
    return log.read()
