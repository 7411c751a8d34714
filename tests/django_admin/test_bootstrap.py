"""The first superuser: generated and shown once when no password is configured, never
a default account, and `python -m django_admin` really serves the admin with it."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.test import RequestFactory

from django_admin.bootstrap import (
    GENERATED_PASSWORD_BYTES,
    WeakPassword,
    ensure_superuser,
    password_notice,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_superuser() -> None:
    """A user database without any superuser, as on the first start."""
    get_user_model().objects.filter(is_superuser=True).delete()


def login_user(username: str, password: str) -> Any:
    """The user a login form's username and password authenticate, or None (with a
    request, as django-axes needs to count failures)."""
    return authenticate(
        RequestFactory().post("/accounts/login/"), username=username, password=password
    )


def test_without_a_password_one_is_generated_and_logs_in(no_superuser: None) -> None:
    password = ensure_superuser(username="gits-admin", password="")

    assert password is not None and len(password) >= 20
    user = login_user("gits-admin", password)
    assert user is not None and user.is_superuser
    validate_password(password, user)  # the generated one passes the password rule


def test_generated_passwords_always_pass_the_password_rule() -> None:
    # Passwords made as ensure_superuser makes them, checked (not hashed: that is slow).
    user = get_user_model()(username="gits-admin")
    for _ in range(1000):
        validate_password(secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), user)


def test_a_second_start_creates_nothing_and_shows_no_password(no_superuser: None) -> None:
    first = ensure_superuser(username="gits-admin", password="")

    assert ensure_superuser(username="gits-admin", password="") is None
    assert ensure_superuser(username="someone-else", password="") is None
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    assert first is not None and login_user("gits-admin", first) is not None


def test_a_configured_password_is_used_and_not_shown(no_superuser: None) -> None:
    assert ensure_superuser(username="ops", password="correct-horse-battery-42") is None
    assert login_user("ops", "correct-horse-battery-42") is not None


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("admin", "admin"),
        ("gits-admin", "1234"),
        ("gits-admin", "short-Pw-1"),  # 10 characters: the rule asks for 12
        ("gits-admin", "P@ssw0rd2024!"),  # a breached word dressed up
        ("gits-admin", "gits-admin-2025"),  # the username, and a breached word
    ],
)
def test_weak_passwords_are_refused_so_admin_admin_never_exists(
    no_superuser: None, username: str, password: str
) -> None:
    with pytest.raises(WeakPassword, match="DJANGO_SUPERUSER_PASSWORD is refused"):
        ensure_superuser(username=username, password=password)
    assert not get_user_model().objects.filter(is_superuser=True).exists()
    assert login_user(username, password) is None


def test_the_notice_frames_user_password_and_url() -> None:
    notice = password_notice(username="gits-admin", password="s3cr3t", url="http://h:8000/")
    lines = notice.splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"+", "-"}
    assert len({len(line) for line in lines}) == 1  # a closed frame
    for expected in ("gits-admin", "s3cr3t", "http://h:8000/", "changepassword"):
        assert expected in notice


class Served:
    """`python -m django_admin` running in a subprocess on a free port."""

    def __init__(self, tmp: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_ADMIN_PORT": str(self.port),
            "DJANGO_DB_PATH": str(tmp / "users.sqlite3"),
            "DJANGO_STATIC_ROOT": str(tmp / "static"),
            "DJANGO_SUPERUSER_PASSWORD": "",
            "QUEUE_MANAGER_URL": f"http://127.0.0.1:{free_port()}",  # nothing there
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django_admin"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output_until_serving(self, seconds: float = 90) -> str:
        """Everything the process printed until its port accepts connections."""
        lines: list[str] = []
        reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        reader.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                reader.join(timeout=5)
                raise AssertionError("django_admin exited:\n" + "".join(lines))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.2)
                continue
            return "".join(lines)
        raise AssertionError("django_admin did not start:\n" + "".join(lines))

    def _read(self, lines: list[str]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            lines.append(line)

    def stop(self) -> None:
        """Stop the process."""
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The admin as `make run` starts it, on a fresh user database."""
    process = Served(tmp_path)
    yield process
    process.stop()


def login(http: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log in through the login form, as a browser does."""
    form = http.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    body = {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
    return http.post("/accounts/login/", data=body)


def test_make_run_serves_the_admin_with_a_generated_first_password(served: Served) -> None:
    # Given a first start with no password configured
    output = served.output_until_serving()

    # Then a framed notice shows the user, the URL and a generated password, once
    found = re.search(r"\| +user: +(\S+) +\|\n\| +password: +(\S+) +\|", output)
    assert found is not None, output
    username, password = found.groups()
    assert username == "gits-admin" and password != "admin"
    assert f"http://127.0.0.1:{served.port}/" in output

    with httpx.Client(base_url=served.url, timeout=30) as http:
        # admin/admin does not log in; the printed password does
        assert "enter a correct username" in login(http, "admin", "admin").text
        assert login(http, username, password).status_code == 302

        # The pages answer, and say plainly that queue_manager is not there
        page = http.get("/algorithms/")
        assert page.status_code == 503 and "queue_manager is not answering" in page.text

        # Dash's JavaScript is served by the admin itself, without internet
        renderer = http.get("/static/dash/component/dash/dash-renderer/build/dash_renderer.min.js")
        assert renderer.status_code == 200 and len(renderer.content) > 10_000
        assert http.get("/static/gits/site.css").status_code == 200
