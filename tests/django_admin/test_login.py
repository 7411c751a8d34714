"""Nobody sees or changes anything without logging in: every page, every Dash endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from dash import Input, Output, dcc, html
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.exceptions import NoReverseMatch
from django_plotly_dash import DjangoDash
from django_plotly_dash.dash_wrapper import all_apps

from tests.django_admin.conftest import text

PROBE = "gits-login-probe"
# Pages an anonymous visitor must reach to log in at all, and the health check.
PUBLIC = {"login", "admin:login", "health"}
SAMPLES = ("1", "probe")

probe = DjangoDash(PROBE)
probe.layout = html.Div([dcc.Input(id="words", value="hello"), html.Div(id="echo")])


@probe.callback(Output("echo", "children"), Input("words", "value"))
def echo(words: str) -> str:
    """Repeat the input: a callback that runs only for a logged-in user."""
    return f"echo: {words}"


def named_patterns(
    patterns: list[Any] | None = None, namespace: str = ""
) -> Iterator[tuple[str, URLPattern]]:
    """Every named URL pattern of the site, with its namespaced name."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_patterns(entry.url_patterns, inner)
        elif entry.name:
            yield f"{namespace}{entry.name}", entry


def sample_url(name: str, pattern: URLPattern) -> str | None:
    """A concrete URL of the pattern, with sample values for its parameters."""
    params = list(pattern.pattern.regex.groupindex)
    for sample in SAMPLES:
        try:
            return reverse(name, kwargs=dict.fromkeys(params, sample))
        except NoReverseMatch:
            continue
    return None


def every_page() -> list[str]:
    """A URL of every named page of the site, Django's user admin and the dashboards
    included, but the login pages."""
    urls = {sample_url(name, p) for name, p in named_patterns() if name not in PUBLIC}
    return sorted(u for u in urls if u is not None and "django_plotly_dash" not in u)


def dash_endpoints(app: str) -> list[str]:
    """The GET endpoints django-plotly-dash serves for one Dash app."""
    base = f"/django_plotly_dash/app/{app}/"
    return [base, f"{base}_dash-layout", f"{base}_dash-dependencies", f"{base}_dash-routes"]


def update_body(app: str) -> str:
    """A Dash callback request for the probe's echo."""
    return json.dumps(
        {
            "output": "echo.children",
            "outputs": {"id": "echo", "property": "children"},
            "inputs": [{"id": "words", "property": "value", "value": "secret"}],
            "changedPropIds": ["words.value"],
        }
    )


def assert_sent_to_login(response: Any, url: str) -> None:
    """The visitor is redirected to a login page (the site's, or the user admin's own)
    and sees nothing of the page."""
    assert response.status_code == 302, f"{url} answered {response.status_code}"
    logins = (reverse("login"), reverse("admin:login"))
    assert response["Location"].startswith(logins), (url, response["Location"])


def test_there_are_pages_to_check() -> None:
    # Given the site's URL configuration, the pages checked below include the site's own
    # pages, Django's user admin and the dashboards.
    pages = every_page()
    for expected in ("/algorithms/", "/services/", "/retraining/", "/monitoring/reports/"):
        assert expected in pages
    assert "/users/" in pages
    assert {"/dashboards/main/", "/dashboards/monitoring/", "/dashboards/realtime/"} <= set(pages)


@pytest.mark.parametrize("url", every_page())
def test_every_page_sends_an_anonymous_visitor_to_login(anonymous: Client, url: str) -> None:
    assert_sent_to_login(anonymous.get(url), url)


@pytest.mark.parametrize("url", ["/algorithms/upload/", "/services/new/", "/retraining/start/"])
def test_no_change_without_login(anonymous: Client, url: str) -> None:
    # A form posted without a session changes nothing: it is sent to log in first.
    assert_sent_to_login(anonymous.post(url, {"name": "sneaky"}), url)


@pytest.mark.parametrize("app", sorted({PROBE, *all_apps()}))
def test_dash_endpoints_need_login(anonymous: Client, app: str) -> None:
    for url in dash_endpoints(app):
        assert_sent_to_login(anonymous.get(url), url)
    update = f"/django_plotly_dash/app/{app}/_dash-update-component"
    response = anonymous.post(update, update_body(app), content_type="application/json")
    assert_sent_to_login(response, update)
    assert b"secret" not in response.content


def test_a_logged_in_user_gets_the_dash_app_and_its_callbacks(browser: Client) -> None:
    base = f"/django_plotly_dash/app/{PROBE}/"
    assert browser.get(base).status_code == 200
    layout = browser.get(f"{base}_dash-layout")
    assert layout.status_code == 200 and "words" in text(layout)
    response = browser.post(
        f"{base}_dash-update-component", update_body(PROBE), content_type="application/json"
    )
    assert response.status_code == 200
    assert "echo: secret" in text(response)


def test_a_dash_page_loads_every_script_locally(browser: Client) -> None:
    # Given a Dash page, every script and stylesheet it names is served by the admin
    # itself (no CDN: the platform runs without internet).
    page = text(browser.get(f"/django_plotly_dash/app/{PROBE}/"))
    assets = re.findall(r'<script src="([^"]+)"', page) + re.findall(
        r'<link rel="stylesheet" href="([^"]+)"', page
    )
    assert any("dash_renderer" in a or "dash-renderer" in a for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served locally"
        response = browser.get(asset, follow=True)
        assert response.status_code == 200, asset
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 100, asset


def test_login_page_is_open_and_logs_in(anonymous: Client, operator: Any) -> None:
    operator.set_password("a-long-test-password-42")
    operator.save()
    page = anonymous.get("/accounts/login/")
    assert page.status_code == 200 and "Log in to GITS" in text(page)

    wrong = anonymous.post("/accounts/login/", {"username": "operator", "password": "admin"})
    assert wrong.status_code == 200 and "enter a correct username and password" in text(wrong)

    right = anonymous.post(
        "/accounts/login/?next=/services/",
        {"username": "operator", "password": "a-long-test-password-42", "next": "/services/"},
    )
    assert right.status_code == 302 and right["Location"] == "/services/"


def test_only_the_health_check_is_open_and_it_tells_nothing(anonymous: Client) -> None:
    response = anonymous.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_logging_out_ends_the_session(browser: Client) -> None:
    assert browser.post("/accounts/logout/").status_code == 302
    assert_sent_to_login(browser.get("/algorithms/"), "/algorithms/")
