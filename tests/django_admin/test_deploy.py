"""Production settings: `manage check --deploy` is clean with DJANGO_SECURE_HTTPS=true
(it named 6 warnings before), and the local plain-HTTP mode names only the warnings that
cannot apply to it, each explained in settings.py. Served behind a TLS proxy, the admin
redirects plain HTTP, sends HSTS and marks its cookies Secure, and trusts the proxy's
headers from the proxy alone. It refuses to start without its two role tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gits_common.settings import config
from tests.django_admin.test_bootstrap import Served

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (ROOT / "django_admin" / "settings.py").read_text()
PRODUCTION_KEY = "prod-key-" + "k3y" * 20  # 69 characters, as a deployment would set
PLAIN_HTTP_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}
SUPERUSER_PASSWORD = "violet-kettle-harbour-92"
CLIENT_ADDRESS = "192.0.2.9"  # a browser behind the proxy (TEST-NET-1: documentation only)


def admin_env(tmp_path: Path, **settings: str | None) -> dict[str, str]:
    """The environment of an admin process: only the settings given here and the
    machine's RabbitMQ password (no .env is read); None leaves a setting out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITS_", "DJANGO_"))}
    given: dict[str, str | None] = {
        "GITS_ENV_DIR": str(tmp_path),  # a folder without .env
        "RABBITMQ_PASSWORD": config("RABBITMQ_PASSWORD"),
        "DJANGO_SECRET_KEY": PRODUCTION_KEY,
        "DJANGO_DB_PATH": str(tmp_path / "users.sqlite3"),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "GITS_ADMIN_TOKEN": os.environ["GITS_ADMIN_TOKEN"],
        "GITS_READ_TOKEN": os.environ["GITS_READ_TOKEN"],
        **settings,
    }
    env.update({k: v for k, v in given.items() if v is not None})
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m django_admin manage <args>`, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "django_admin", "manage", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def warnings_of(done: subprocess.CompletedProcess[str]) -> set[str]:
    """The check ids a `check` run named."""
    return set(re.findall(r"\((\w+\.[WE]\d+)\)", done.stdout + done.stderr))


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    env = admin_env(tmp_path, DJANGO_SECURE_HTTPS="true")
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout
    assert warnings_of(done) == set()


def test_plain_http_mode_names_only_what_cannot_apply_and_settings_say_why(
    tmp_path: Path,
) -> None:
    done = manage(admin_env(tmp_path), "check", "--deploy")
    assert warnings_of(done) == PLAIN_HTTP_WARNINGS, done.stderr
    for warning in PLAIN_HTTP_WARNINGS:
        assert warning.removeprefix("security.") in SETTINGS_SOURCE  # explained there


def test_debug_is_off_unless_asked_for(tmp_path: Path) -> None:
    script = "import django_admin.settings as s; print(s.DEBUG, s.SECURE_SSL_REDIRECT)"
    shown = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=admin_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.split() == ["False", "False"], shown.stderr


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"GITS_READ_TOKEN": None}, "GITS_READ_TOKEN is not set"),
        ({"GITS_ADMIN_TOKEN": None}, "GITS_ADMIN_TOKEN is not set"),
        ({"GITS_READ_TOKEN": "r" * 31}, "GITS_READ_TOKEN has 31 characters"),
        ({"GITS_ADMIN_TOKEN": "a" * 12}, "GITS_ADMIN_TOKEN has 12 characters"),
        ({"GITS_ADMIN_TOKEN": "s" * 40, "GITS_READ_TOKEN": "s" * 40}, "must be different"),
        ({"DJANGO_SECRET_KEY": "k" * 20}, "DJANGO_SECRET_KEY has 20 characters"),
        # The former shared token is no fallback for either
        (
            {
                "GITS_ADMIN_TOKEN": None,
                "GITS_READ_TOKEN": None,
                "GITS_API_TOKEN": "shared-token-of-old-0123456789abcdef",
            },
            "is not set",
        ),
    ],
)
def test_the_admin_refuses_to_start_without_its_secrets(
    tmp_path: Path, settings: dict[str, str | None], said: str
) -> None:
    done = manage(admin_env(tmp_path, **settings), "check")
    assert done.returncode != 0
    assert "django_admin cannot start" in done.stderr and said in done.stderr, done.stderr


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The admin as production runs it: HTTPS behind a proxy on this host."""
    served = Served(
        tmp_path_factory.mktemp("https"),
        DJANGO_SECURE_HTTPS="true",
        DJANGO_TRUSTED_PROXY="127.0.0.1",
        DJANGO_SECRET_KEY=PRODUCTION_KEY,
        DJANGO_SUPERUSER_PASSWORD=SUPERUSER_PASSWORD,
    )
    try:
        served.output_until_serving()
        yield served
    finally:
        served.stop()


def through_proxy(served: Served, client_address: str = CLIENT_ADDRESS) -> httpx.Client:
    """A browser reaching the admin through the TLS proxy (which sets these headers)."""
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": client_address,
        "Origin": f"https://127.0.0.1:{served.port}",
    }
    return httpx.Client(base_url=served.url, headers=headers, timeout=30)


def log_in(http: httpx.Client, password: str) -> httpx.Response:
    """Post the login form of the superuser. The CSRF cookie is Secure: httpx keeps it
    from a plain-HTTP address, where the browser (on HTTPS to the proxy) sends it."""
    form = http.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None, form.text
    body = {"username": "gits-admin", "password": password, "csrfmiddlewaretoken": token[1]}
    cookie = {"Cookie": f"csrftoken={form.cookies['csrftoken']}"}
    return http.post("/accounts/login/", data=body, headers=cookie)


def test_plain_http_is_redirected_to_https(behind_proxy: Served) -> None:
    with httpx.Client(base_url=behind_proxy.url, timeout=30) as http:
        response = http.get("/accounts/login/")
    assert response.status_code == 301
    assert response.headers["location"] == f"https://127.0.0.1:{behind_proxy.port}/accounts/login/"


def test_over_https_cookies_are_secure_and_hsts_is_sent(behind_proxy: Served) -> None:
    with through_proxy(behind_proxy) as http:
        page = http.get("/accounts/login/")
        assert page.status_code == 200
        hsts = page.headers["strict-transport-security"]
        assert hsts == "max-age=31536000; includeSubDomains; preload"
        assert page.headers["x-frame-options"] == "DENY"
        assert "Secure" in page.headers["set-cookie"]  # the CSRF cookie

        response = log_in(http, SUPERUSER_PASSWORD)
        assert response.status_code == 302
        session = [c for c in response.headers.get_list("set-cookie") if "sessionid" in c]
        assert session and "Secure" in session[0] and "HttpOnly" in session[0]


def test_only_the_proxy_may_say_the_request_came_over_https(behind_proxy: Served) -> None:
    # A client on another address sending the proxy's header is not believed
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(
        base_url=behind_proxy.url,
        headers={"X-Forwarded-Proto": "https"},
        transport=transport,
        timeout=30,
    ) as http:
        response = http.get("/accounts/login/")
    assert response.status_code == 301


def test_behind_the_proxy_the_lockout_counts_each_client_address(behind_proxy: Served) -> None:
    # Given five wrong passwords from one browser behind the proxy
    with through_proxy(behind_proxy, "192.0.2.20") as http:
        for _ in range(5):
            log_in(http, "wrong-password-of-a-guesser")
        assert log_in(http, SUPERUSER_PASSWORD).status_code == 429
    # Then the same account still logs in from another browser behind the same proxy
    with through_proxy(behind_proxy, "192.0.2.21") as http:
        assert log_in(http, SUPERUSER_PASSWORD).status_code == 302
