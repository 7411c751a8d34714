"""GITS services as real processes, for tests that use the platform as a user does.

Each service runs as `python -m <package>` (what `make run` starts) on a free port, with
the test settings of tests/conftest.py (the test database, the test tokens) and a
queue_manager schema of its own in the test database, which the next run's
`postgres_dsn` fixture drops (QM_SCHEMA_PREFIX). `Platform.start` runs any other process
beside them (a worker, a publisher) with the same environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import QM_SCHEMA_PREFIX, free_port

ROOT = Path(__file__).resolve().parents[1]
# Each API and the setting that gives its port (its URL setting is <API>_URL).
APIS = {
    "ml_data_api": "ML_DATA_API_PORT",
    "queue_manager": "QUEUE_MANAGER_PORT",
    "monitoring_api": "MONITORING_API_PORT",
    "retraining_api": "RETRAINING_API_PORT",
}


@dataclass
class Platform:
    """Running processes: where each API answers, their environment and their logs."""

    urls: dict[str, str]
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str, **env: str) -> None:
        """Run `python -m <args>` as a named process with the platform's environment."""
        # A file, not a pipe: nobody reads a pipe while the process runs, and a full one
        # would block it.
        if name in self.logs:  # run again: the earlier run's log goes
            self.logs.pop(name).close()
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop_all)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, stderr=log, stdout=log, env={**self.env, **env}
        )
        self.logs[name] = log

    def stop(self, name: str) -> None:
        """Stop one process (SIGTERM, then SIGKILL after 15 s); its log stays readable
        until `start` runs it again under the same name."""
        process = self.processes[name]
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_of(self, name: str) -> str:
        """What a process has written so far."""
        log = self.logs[name]
        log.seek(0)
        return log.read().decode(errors="replace")

    def wait_until_up(self, name: str, url: str, *, seconds: float = 90) -> None:
        """Poll `url` until it answers below 500; fail with the process's log if it exits."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                pytest.fail(
                    f"{name} exited with {process.returncode}:\n{self.log_of(name)[-3000:]}"
                )
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        pytest.fail(f"{name} did not answer at {url} in {seconds}s:\n{self.log_of(name)[-3000:]}")

    def stop_all(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and print the end of each log, for
        pytest to show when a test failed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for name, process in self.processes.items():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            print(f"--- {name} (exit {process.returncode}) ---\n{self.log_of(name)[-2000:]}")
            self.logs[name].close()


def platform_env(urls: dict[str, str], tmp: Path, **settings: str) -> dict[str, str]:
    """The environment of every process: the test settings, where each API answers, a
    private queue_manager store and retraining artifacts under `tmp`."""
    return {
        **os.environ,
        "LOG_LEVEL": "INFO",
        "MONGODB_URL": "",
        "QUEUE_MANAGER_SCHEMA": f"{QM_SCHEMA_PREFIX}{uuid.uuid4().hex[:12]}",
        "RETRAINING_ARTIFACTS_DIR": str(tmp / "retraining"),
        **{f"{api.upper()}_URL": url for api, url in urls.items()},
        **settings,
    }


@contextmanager
def running_apis(tmp: Path, **settings: str) -> Iterator[Platform]:
    """The four APIs, each answering its /health, until the block ends."""
    urls = {api: f"http://127.0.0.1:{free_port()}" for api in APIS}
    platform = Platform(urls=urls, env=platform_env(urls, tmp, **settings))
    try:
        for api, port_setting in APIS.items():
            platform.start(api, api, **{port_setting: urls[api].rsplit(":", 1)[1]})
        for api, url in urls.items():
            platform.wait_until_up(api, f"{url}/health")
        yield platform
    finally:
        platform.stop_all()
