"""`python -m monitoring_api` starts the service, which says how it stores its history,
in one JSON object a line with LOG_FORMAT=json (uvicorn's own lines too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_monitoring_api_serves_health_and_names_its_storage(postgres_dsn, timescaledb):
    port = free_port()
    env = {
        **os.environ,
        "MONITORING_API_PORT": str(port),
        "MONITORING_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitoring_api"], cwd=ROOT, env=env, stderr=log
        )
        try:
            health = wait_for_health(f"http://127.0.0.1:{port}/health", process)
        finally:
            process.terminate()
            process.wait(timeout=30)
        log.seek(0)
        logged = log.read().decode(errors="replace")

    assert health["status"] == "ok"
    assert health["timescaledb"] is timescaledb
    lines = [json.loads(line) for line in logged.splitlines()]
    assert all(line["service"] == "monitoring_api" for line in lines), logged
    messages = " ".join(line["message"] for line in lines)
    storage = "a hypertable" if timescaledb else "a plain table with a (use_case, time)"
    assert f"the metric history is {storage}" in messages
    assert "no scheduled history points" in messages
    # uvicorn's loggers (log_config=None) write through the same JSON handler
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, loggers


def wait_for_health(url: str, process: subprocess.Popen[bytes]) -> dict:
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.get(url)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        assert process.poll() is None, "monitoring_api exited"
        assert time.monotonic() < deadline, "monitoring_api did not answer within a minute"
        time.sleep(0.2)
