"""Roles in the admin: every operator reads every page and dashboard; only one with the
permission to manage models (the "Model managers" group, or a superuser) changes
anything. A refused change is a 403 page in words and sends nothing to any API. Reads go
out with GITS_READ_TOKEN, changes with GITS_ADMIN_TOKEN.

Every page of the site is walked, from the URL configuration, with an operator without
the permission and with one who has it, against the real APIs, and every request the
admin sent is looked at (which token it carried)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.test import Client, override_settings
from django.urls import URLPattern, reverse

from django_admin.apis import acting_client, reset_clients
from django_admin.roles import MANAGE_MODELS, MANAGERS_GROUP, may_manage
from django_admin.site import bindings, catalog, retraining
from gits_common.schemas import UseCase
from tests.django_admin.conftest import Platform, Retraining, text, unique
from tests.django_admin.test_login import named_patterns

# Pages that are a form making a change and nothing else: only managers open them.
FORMS = {"algorithm_upload", "service_new", "service_bind", "retraining_start"}
# Changes that only take a POST.
ACTIONS = {
    "algorithm_delete",
    "job_promote",
    "job_explain",
    "service_rollback",
    "service_delete",
    "alert_acknowledge",
    "alert_retrain",
}
# Reads that need more than the read token: a model file needs the runtime role, so only
# managers open it, and the admin reads it with the admin token.
MANAGER_READS = {"algorithm_download"}
# Pages every operator reads, with a form only managers see and post.
READ_WITH_FORM = {"explainers"}
# Pages that only read.
READS = {
    "health",
    "overview",
    "alerts",
    "algorithms",
    "algorithm",
    "algorithm_compare",
    "services",
    "service",
    "retraining",
    "retraining_job",
    "promotions",
    "explainer",
    "explainer_page",
    "monitoring_report",
    "dashboards:main",
    "dashboards:monitoring",
    "dashboards:realtime",
}
# Every user's own: the way in and out, and one's own password.
ACCOUNT = {"login", "logout", "password_change"}
CHANGES = FORMS | ACTIONS | READ_WITH_FORM
# Sample values of URL parameters, of records no API holds: an action on them is
# refused by the API (404/409/422), never carried out.
SAMPLES = {
    "name": "h4-absent-probe",
    "service": "h4-absent-probe",
    "use_case": "h4-absent-probe",
    "version": "999999",
}
SAMPLE_ID = "999999"
# What only a manager's pages show: links to the change forms, and the forms' actions.
CHANGE_MARKS = (
    "/algorithms/upload/",
    "/delete/",
    "/services/new/",
    "/bind/",
    "/retraining/start/",
    "/promote/",
    "/rollback/",
    "/explain/",
    "/file/",
    '<form method="post" class="narrow"',
)


@dataclass(frozen=True)
class Sent:
    """One request the admin sent to an API."""

    method: str
    path: str
    token: str  # the role whose token it carried: "admin", "read", "runtime" or "other"


def role_of(authorization: str) -> str:
    """The role whose token an Authorization header carries."""
    for role in ("admin", "runtime", "read"):
        if authorization == f"Bearer {os.environ[f'GITS_{role.upper()}_TOKEN']}":
            return role
    return "other"


# What every page's navigation reads (the open alerts' count, django_admin.site.context):
# a read with the read token, sent when the count is not cached, whatever the page is.
NAVIGATION = Sent("GET", "/monitoring_api/alerts", "read")


def beyond_navigation(sent: list[Sent]) -> list[Sent]:
    """The requests a page sent besides its navigation's."""
    return [s for s in sent if s != NAVIGATION]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every request sent through a blocking httpx client (the admin's clients) from now
    on; the APIs under test call each other with async clients, which are not counted."""
    seen: list[Sent] = []
    send = httpx.Client.send

    def recording(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        seen.append(
            Sent(request.method, request.url.path, role_of(request.headers.get("authorization")))
        )
        return send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", recording)
    return seen


@pytest.fixture
def apis(platform: Platform, retraining: Retraining) -> Iterator[Platform]:
    """Every API the pages use, served, and the admin pointed at them."""
    yield platform


@pytest.fixture(scope="module")
def manager() -> Any:
    """An operator in the "Model managers" group (not a superuser)."""
    user, _ = get_user_model().objects.get_or_create(username="roles-manager")
    user.groups.add(Group.objects.get(name=MANAGERS_GROUP))
    return user


@pytest.fixture
def manager_browser(manager: Any) -> Client:
    """A browser logged in as the manager."""
    client = Client()
    client.force_login(manager)
    return client


def site_pages() -> list[tuple[str, URLPattern]]:
    """Every named page of the operators' site (not Django's user admin, whose own
    permissions guard it, nor django-plotly-dash's endpoints, which only read)."""
    return [
        (name, pattern)
        for name, pattern in named_patterns()
        if not name.startswith(("admin:", "the_django_plotly_dash:"))
    ]


def url_of(name: str, pattern: URLPattern) -> str:
    """The page's URL, with sample values for its parameters."""
    params = pattern.pattern.regex.groupindex
    return reverse(name, kwargs={p: SAMPLES.get(p, SAMPLE_ID) for p in params})


def refused_in_words(response: Any) -> bool:
    """A 403 page that says why, and how to get the permission."""
    page = text(response)
    return (
        response.status_code == 403
        and "may look at models" in page
        and MANAGERS_GROUP in page
        and "Nothing was changed" in page
    )


def test_every_page_is_classified() -> None:
    # A new page must be placed in one of the sets above, so the walks below cover it.
    names = {name for name, _ in site_pages()}
    assert names == FORMS | ACTIONS | READ_WITH_FORM | READS | MANAGER_READS | ACCOUNT


def test_the_group_holds_the_permission_and_superusers_have_it() -> None:
    group = Group.objects.get(name=MANAGERS_GROUP)
    app_label, codename = MANAGE_MODELS.split(".")
    assert group.permissions.filter(content_type__app_label=app_label, codename=codename).exists()
    assert Permission.objects.filter(codename=codename).count() == 1
    boss, _ = get_user_model().objects.get_or_create(
        username="roles-superuser", defaults={"is_superuser": True, "is_staff": True}
    )
    plain, _ = get_user_model().objects.get_or_create(username="roles-plain")
    assert may_manage(boss) and not may_manage(plain)


@pytest.mark.parametrize(("name", "pattern"), site_pages(), ids=[n for n, _ in site_pages()])
def test_an_operator_without_the_permission_reads_every_page_with_the_read_token(
    viewer_browser: Client, apis: Platform, sent: list[Sent], name: str, pattern: URLPattern
) -> None:
    url = url_of(name, pattern)
    response = viewer_browser.get(url)
    if name in FORMS | MANAGER_READS:
        # A form that makes a change, or a model file: refused in words, before any API
        # is asked anything
        assert refused_in_words(response), (url, response.status_code)
        assert beyond_navigation(sent) == []
    elif name in ACTIONS or name == "logout":
        assert response.status_code == 405, url  # POST only
        assert beyond_navigation(sent) == []
    else:
        assert response.status_code not in (403, 500), (url, response.status_code)
        assert {s.token for s in sent} <= {"read"}, (url, sent)


@pytest.mark.parametrize("name", sorted(CHANGES | READS | MANAGER_READS))
def test_an_operator_without_the_permission_changes_nothing_and_sends_nothing(
    viewer_browser: Client, apis: Platform, sent: list[Sent], name: str
) -> None:
    pattern = dict(site_pages())[name]
    url = url_of(name, pattern)
    # A made-up but valid change, as a form on the page would post it
    body = {"name": unique("sneaky"), "routing_key": "x.data", "algorithm": "a@1"}
    response = viewer_browser.post(url, body)
    if name in CHANGES:
        assert refused_in_words(response), (url, response.status_code)
    else:
        assert response.status_code == 405, url  # a page that only reads takes no POST
    assert beyond_navigation(sent) == []


@pytest.mark.parametrize(("name", "pattern"), site_pages(), ids=[n for n, _ in site_pages()])
def test_an_operator_with_the_permission_reads_every_page_with_the_read_token(
    manager_browser: Client, apis: Platform, sent: list[Sent], name: str, pattern: URLPattern
) -> None:
    url = url_of(name, pattern)
    response = manager_browser.get(url)
    expected_405 = name in ACTIONS or name == "logout"
    assert (response.status_code == 405) == expected_405, (url, response.status_code)
    assert response.status_code not in (403, 500), (url, response.status_code)
    token = "admin" if name in MANAGER_READS else "read"
    assert {s.token for s in sent} <= {token}, (url, sent)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_an_operator_with_the_permission_changes_with_the_admin_token(
    manager_browser: Client, apis: Platform, sent: list[Sent], name: str
) -> None:
    pattern = dict(site_pages())[name]
    url = url_of(name, pattern)
    response = manager_browser.post(url, {"data": "production"})
    # Not refused by the admin, and not by an API either: the APIs took the tokens and
    # answered about the (absent) records or the (empty) form
    assert response.status_code not in (403, 500), (url, response.status_code)
    assert "does not accept the admin's" not in text(response)
    assert all(s.token == ("read" if s.method == "GET" else "admin") for s in sent), sent
    if name in ACTIONS:
        assert [s.method for s in sent if s.method != "GET"], f"{url} sent no change"


def test_no_change_without_the_permission_even_past_the_pages(
    viewer: Any, apis: Platform, use_case: UseCase, sent: list[Sent]
) -> None:
    # Given a view that forgot its check: the functions that change things check again,
    # before anything is sent
    binding = bindings.Binding("x.data", "a", 1, "viewer")
    upload = catalog.Upload(name="a", use_case=use_case, description="", uploaded_by="viewer")
    attempts = [
        lambda: catalog.upload_algorithm(upload, io.BytesIO(b"model"), user=viewer),
        lambda: catalog.delete_version("a", 1, user=viewer),
        lambda: catalog.open_version_file("a", 1, user=viewer),
        lambda: bindings.delete_service("a", user=viewer),
        lambda: bindings.create_service("a", binding, user=viewer),
        lambda: bindings.rebind_service("a", binding, use_case=None, user=viewer),
        lambda: retraining.start_job({"use_case": use_case.name}, user=viewer),
        lambda: retraining.promote(1, user=viewer),
        lambda: retraining.rollback("a", user=viewer),
        lambda: retraining.start_explainer({"job_id": 1}, user=viewer),
        lambda: acting_client("queue_manager", viewer),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    assert beyond_navigation(sent) == []


@pytest.fixture(scope="module")
def records(platform: Platform, use_case: UseCase) -> dict[str, str]:
    """An algorithm with a version in use and one not, and the service using the first."""
    name, service = unique("roles"), unique("roles_service")
    platform.upload(name, use_case)
    platform.upload(name, use_case)
    platform.bind(service, name, 1)
    return {"algorithm": name, "service": service}


def pages_of(records: dict[str, str]) -> list[str]:
    """Pages that show records with things one may do to them."""
    return [
        "/algorithms/",
        f"/algorithms/{records['algorithm']}/",
        "/services/",
        f"/services/{records['service']}/",
        "/retraining/",
        "/retraining/promotions/",
        "/retraining/explainers/",
    ]


def test_an_operator_without_the_permission_sees_no_button_that_changes_anything(
    viewer_browser: Client, apis: Platform, records: dict[str, str]
) -> None:
    assert records["algorithm"] in text(viewer_browser.get("/algorithms/"))
    for url in pages_of(records):
        response = viewer_browser.get(url)
        page = text(response)
        assert response.status_code == 200, url
        assert [mark for mark in CHANGE_MARKS if mark in page] == [], url
        assert "(read only)" in page


def test_an_operator_with_the_permission_sees_the_buttons(
    manager_browser: Client, apis: Platform, records: dict[str, str]
) -> None:
    shown = ""
    for url in pages_of(records):
        response = manager_browser.get(url)
        assert response.status_code == 200, url
        assert "(read only)" not in text(response)
        shown += text(response)
    # Promote, explain and roll back need finished jobs and promotions (test_every_page)
    later = ("/promote/", "/explain/", "/rollback/")
    assert [m for m in CHANGE_MARKS if m not in shown and m not in later] == []
    algorithm = records["algorithm"]
    detail = text(manager_browser.get(f"/algorithms/{algorithm}/"))
    # The unused version 2 can be deleted; version 1, in use, cannot
    assert f"/algorithms/{algorithm}/versions/2/delete/" in detail
    assert f"/algorithms/{algorithm}/versions/1/delete/" not in detail


def test_a_token_an_api_does_not_take_is_named_in_words(
    browser: Client, apis: Platform, records: dict[str, str]
) -> None:
    # Given an admin whose read token is not the APIs' (401)
    with override_settings(GITS_READ_TOKEN="x" * 40):
        reset_clients()
        page = browser.get("/algorithms/")
    reset_clients()
    # Then the page says so in words; the setting to fix is in the operator's log
    assert page.status_code == 502
    assert "queue_manager does not accept the admin's credentials" in text(page)
    assert "GITS_READ_TOKEN" not in text(page)

    # Given an admin whose admin token is the read token (403: the role is too low)
    version = f"/algorithms/{records['algorithm']}/versions/2/delete/"
    with override_settings(GITS_ADMIN_TOKEN=os.environ["GITS_READ_TOKEN"]):
        reset_clients()
        response = browser.post(version, follow=True)
    reset_clients()
    said = re.sub(r"\s+", " ", text(response))
    assert "queue_manager does not accept the admin's credentials" in said
    assert "GITS_ADMIN_TOKEN" not in said
    assert "nothing was changed" in said
    assert [v["version"] for v in apis.versions(records["algorithm"])] == [2, 1]
