"""The README's "Your own data in ten minutes" runs as written: its `sh tutorial-workers`
and `sh tutorial` blocks, taken from the README at test time (never copied here), run in
a fresh folder against the platform as real processes (the four APIs and the admin), and
the journey goes on through `gits` as a user's would: retrain, promote by hand, roll
back, refuse to delete a use case in use, and the status of it all."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from tests.amqp_helpers import delete_service_queues
from tests.conftest import free_port
from tests.live_platform import ROOT, Platform, running_apis

BLOCK = r"^```sh {}\n(.*?)^```"
SERVICE = "service_digits"
WORKERS = 2


def tutorial(name: str = "tutorial") -> str:
    """A block of the README's tutorial (```sh <name>)."""
    found = re.findall(BLOCK.format(name), (ROOT / "README.md").read_text(), re.S | re.M)
    assert len(found) == 1, f"the README has one ```sh {name} block"
    return str(found[0])


def test_the_tutorial_is_the_readme_section_it_is_in():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Your own data in ten minutes", 1)[1].split("\n## ", 1)[0]

    assert tutorial() in section and tutorial("tutorial-workers") in section
    assert ".venv/bin/gits use-case create" in tutorial()


def start_the_admin(platform: Platform, tmp: Path) -> None:
    """The admin, as `make run` starts it."""
    admin_port = platform.env["DJANGO_ADMIN_PORT"]
    platform.start(
        "django_admin",
        "django_admin",
        DJANGO_DB_PATH=str(tmp / "admin.sqlite3"),
        DJANGO_SECRET_KEY=f"tutorial-{uuid.uuid4().hex}",
        DJANGO_SUPERUSER_USERNAME="tutorial",
        DJANGO_SUPERUSER_PASSWORD=f"pw-{uuid.uuid4().hex}",
        DJANGO_SUPERUSER_EMAIL="admin@example.invalid",
        DJANGO_STATIC_FROM_FINDERS="true",
        DJANGO_STATIC_ROOT=str(tmp / "static"),
    )
    platform.wait_until_up("django_admin", f"http://127.0.0.1:{admin_port}/accounts/login/")


def shell(script: str, cwd: Path, platform: Platform) -> subprocess.CompletedProcess[str]:
    """Run commands as a user's shell would, from `cwd`, with the platform's settings
    (and the rest from the checkout's .env)."""
    env = {**platform.env, "GITS_ENV_DIR": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    print(f"$ {script}\n{done.stdout}\n{done.stderr}")
    return done


@pytest.mark.slow
def test_the_tutorial_runs_as_written_and_the_journey_goes_on(
    tmp_path, postgres_dsn, rabbitmq_url, free_admin_port
):
    home = tmp_path / "user"
    home.mkdir()
    (home / ".venv").symlink_to(ROOT / ".venv")
    workers: subprocess.Popen[bytes] | None = None
    with running_apis(tmp_path, DJANGO_ADMIN_PORT=str(free_admin_port)) as platform:
        try:
            start_the_admin(platform, tmp_path)
            # The README's workers, in a terminal of their own (`exec`: the shell becomes
            # the command, which Ctrl-C or SIGTERM then stops)
            workers = subprocess.Popen(
                ["bash", "-c", f"exec {tutorial('tutorial-workers').strip()}"],
                cwd=home,
                env={**platform.env, "GITS_ENV_DIR": str(ROOT)},
                start_new_session=True,  # a group of its own, ended whatever happens
            )

            # The README's block, as written: every command succeeds (set -e)
            done = shell(tutorial(), home, platform)
            assert done.returncode == 0, done.stderr
            said = done.stdout
            assert "registered use case digits" in said
            assert "registered digits:1" in said
            assert f"service {SERVICE} (routing key {SERVICE}) uses it" in said
            assert "published 697 messages" in said
            assert "697 predictions labelled; 0 ids not (yet) stored" in said
            assert "share_of_drifted_columns" in said or "drift" in said
            assert "History of digits" in said and "accuracy" in said

            # The journey goes on: a retraining whose challenger loses keeps the champion
            retrain = shell(
                f".venv/bin/gits train digits --models dummy --bind {SERVICE}", home, platform
            )
            assert retrain.returncode == 0, retrain.stderr
            job = re.search(r"retraining job (\d+) queued", retrain.stdout)
            assert job is not None
            assert "does not beat champion" in retrain.stdout
            # ... which an operator can override, and undo
            promoted = shell(f".venv/bin/gits promote {job[1]}", home, platform)
            assert promoted.returncode == 0, promoted.stderr
            assert f"{SERVICE}: digits:1 -> digits:2" in promoted.stdout
            rolled_back = shell(f".venv/bin/gits rollback {SERVICE}", home, platform)
            assert f"{SERVICE}: digits:2 -> digits:1" in rolled_back.stdout
            models = shell(".venv/bin/gits models --use-case digits", home, platform)
            assert "digits:1" in models.stdout and "digits:2" in models.stdout

            # A use case in use is not deleted; the platform is up, its service consumed
            refused = shell(".venv/bin/gits use-case delete digits --yes", home, platform)
            assert refused.returncode == 1
            assert SERVICE in refused.stderr
            # (once the workers have predicted with the version rolled back to, and said so)
            more = pd.read_csv(home / "digits_stream.csv").head(20)
            more["message_id"] = "again-" + more["message_id"]
            more.to_csv(home / "more.csv", index=False)
            again = shell(".venv/bin/gits publish digits more.csv", home, platform)
            assert "published 20 messages" in again.stdout, again.stderr
            expected = [SERVICE, "digits", SERVICE, "digits:1", "yes", "0", str(WORKERS), "0"]
            for _ in range(60):
                status = shell(".venv/bin/gits status", home, platform)
                assert status.returncode == 0, status.stdout
                if service_row(status.stdout) == expected:
                    break
                time.sleep(1)
            assert service_row(status.stdout) == expected
            workers.terminate()
            assert workers.wait(timeout=60) == 0
        finally:
            if workers is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(workers.pid, signal.SIGKILL)
            delete_service_queues(rabbitmq_url, SERVICE)


def service_row(status: str) -> list[str]:
    """The cells of the tutorial service's row in `gits status`."""
    row = next(line for line in status.splitlines() if line.count(SERVICE) == 2)
    return [cell.strip() for cell in row.split("\u2502") if cell.strip()]


@pytest.fixture
def free_admin_port() -> int:
    """A port for the admin."""
    return free_port()
