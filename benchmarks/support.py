"""Starting a service for a benchmark, on its own port and the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from gits_common.settings import Role, config, token


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**extra: str) -> dict[str, str]:
    """The environment benchmark processes run with: the test database, quiet logs."""
    return {
        **os.environ,
        "POSTGRES_DB": f"{config('POSTGRES_DB', default='gits')}_test",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        **extra,
    }


@contextmanager
def running_service(module: str, port_setting: str) -> Iterator[str]:
    """`python -m <module>` on a free port against `<POSTGRES_DB>_test`; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module], env=service_env(**{port_setting: str(port)})
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{module} did not come up")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def bearer() -> dict[str, str]:
    """Headers with the platform's API token."""
    return {"Authorization": f"Bearer {token(Role.admin)}"}
