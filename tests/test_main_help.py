"""`python -m <package>` answers --help with its usage and refuses an unknown option with
exit status 2, at once, and in neither case starts anything: no port is bound, nothing
is connected to, no file or row is written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "queue_manager",
    "ml_data_api",
    "monitoring_api",
    "retraining_api",
    "django_admin",
    "data_source",
    "ground_truth_collector",
    "ml_data_loader",
    "workers",
]
SECONDS = 10  # "at once", with room for a loaded machine (most answer well under 2 s)


class Tripwire:
    """A listening port that counts the connections made to it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.socket.close()


@pytest.fixture
def isolated(tripwire: Tripwire, tmp_path: Path) -> dict[str, str]:
    """An environment where every address a service could use, to listen or to connect,
    is the tripwire's (a server that started would fail to bind it), and every file or
    directory a service writes is under tmp_path/state."""
    state = tmp_path / "state"
    url = f"http://127.0.0.1:{tripwire.port}"
    port = str(tripwire.port)
    return {
        **os.environ,
        "POSTGRES_PORT": port,
        "RABBITMQ_PORT": port,
        "MONGODB_URL": f"mongodb://127.0.0.1:{port}",
        **{f"{api}_PORT": port for api in ("ML_DATA_API", "QUEUE_MANAGER", "DJANGO_ADMIN")},
        **{f"{api}_PORT": port for api in ("MONITORING_API", "RETRAINING_API")},
        **{f"{api}_URL": url for api in ("ML_DATA_API", "QUEUE_MANAGER")},
        **{f"{api}_URL": url for api in ("MONITORING_API", "RETRAINING_API")},
        "DJANGO_DB_PATH": str(state / "admin.sqlite3"),
        "DJANGO_STATIC_ROOT": str(state / "static"),
        "GROUND_TRUTH_STATE_DIR": str(state / "ground_truth"),
        "RETRAINING_ARTIFACTS_DIR": str(state / "retraining"),
    }


def run_module(package: str, option: str, env: dict[str, str]) -> tuple[int, str, str, float]:
    """Exit status, stdout, stderr and seconds taken by `python -m package option`."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", package, option],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


@pytest.mark.parametrize("package", PACKAGES)
def test_help_and_a_wrong_option_answer_at_once_and_start_nothing(
    package, isolated, tripwire, tmp_path
):
    # When asked for help
    code, out, err, seconds = run_module(package, "--help", isolated)
    # Then it prints its usage and exits 0, at once
    assert (code, err) == (0, ""), err
    assert out.startswith(f"usage: python -m {package}")
    assert seconds < SECONDS

    # When given an option it does not have
    code, out, err, seconds = run_module(package, "--no-such-flag", isolated)
    # Then it says so with its usage, and exits 2
    assert code == 2, err
    assert "usage:" in err
    assert "--no-such-flag" in err
    assert seconds < SECONDS

    # And in neither case did it listen, connect or write anything
    assert tripwire.connections == 0
    assert not (tmp_path / "state").exists()


def test_the_admins_manage_command_still_hands_every_argument_to_django(isolated, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "django_admin", "manage", "help", "changepassword"],
        cwd=ROOT,
        env=isolated,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m django_admin manage changepassword")
    assert "--database" in done.stdout  # Django's own options, not ours
    assert not (tmp_path / "state").exists()
