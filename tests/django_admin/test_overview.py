"""The overview an operator lands on, the alerts that lead to action, the original's
addresses, and errors in words: against the real APIs, RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import psycopg2
import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from django_admin.site import overview
from django_admin.site.failures import in_words
from gits_common.amqp import declare_service_queue
from gits_common.schemas import UseCase
from monitoring_api import store
from tests.amqp_helpers import delete_service_queues, publish
from tests.django_admin.conftest import (
    T0,
    Platform,
    point_admin_at,
    readings,
    register,
    text,
    unique,
)

pytestmark = pytest.mark.usefixtures("monitoring")


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    """Each test counts open alerts anew (the navigation keeps its count 15 s)."""
    cache.clear()


@pytest.fixture
def stopped_service(platform: Platform, filled: UseCase, rabbitmq_url: str) -> Iterator[str]:
    """A service of the filled use case, bound to a model, whose queue holds 3 messages
    and no worker consumes: as if its workers were stopped."""
    service = unique("svc")
    algorithm = unique("algo")
    platform.upload(algorithm, filled)
    platform.bind(service, algorithm)

    async def declare() -> None:
        async with await aio_pika.connect(rabbitmq_url) as connection:
            channel = await connection.channel()
            await declare_service_queue(channel, service=service, routing_key=f"{service}.data")

    asyncio.run(declare())
    publish(rabbitmq_url, f"{service}.data", [{"n": n} for n in range(3)])
    yield service
    delete_service_queues(rabbitmq_url, service)


def with_rows(platform: Platform, *, training_rows: int) -> UseCase:
    """A fresh use case with that many training rows and a fifth as many testing rows."""
    case = register(platform, "ov")
    base = f"/ml_data_api/use_cases/{case.name}"
    with platform.http("ml_data_api") as http:
        rows = readings(training_rows, start=T0, production=False)
        http.post(f"{base}/training/rows", json={"rows": rows}).raise_for_status()
        later = T0 + timedelta(days=1)
        rows = readings(training_rows // 5, start=later, production=False)
        http.post(f"{base}/testing/rows", json={"rows": rows}).raise_for_status()
    return case


def raise_alert(postgres_dsn: str, use_case: str, **fields: Any) -> dict[str, Any]:
    """Store an alert as a history point of monitoring_api would (test setup)."""
    window = ((T0 + timedelta(days=1)).isoformat(), (T0 + timedelta(days=1, hours=1)).isoformat())
    alert = {
        "metric": "drift_share",
        "feature": None,
        "value": 0.8,
        "threshold": 0.5,
        "delivery": "none",
    } | fields
    with psycopg2.connect(postgres_dsn) as conn:
        (stored,) = store.insert_alerts(
            conn=conn, use_case=use_case, time=datetime.now(UTC), window=window, alerts=[alert]
        )
    conn.close()
    return stored


def tile(page: str, use_case: str, service: str = "") -> str:
    """The HTML of one tile of the overview."""
    found = re.search(
        rf'<section class="tile[^"]*"[^>]*data-use-case="{use_case}" '
        rf'data-service="{service}" data-state="(\w+)">(.*?)</section>',
        page,
        re.DOTALL,
    )
    assert found is not None, f"no tile of {use_case} {service}"
    return f"state={found[1]} {found[2]}"


def test_logging_in_lands_on_the_overview(operator: Any) -> None:
    operator.set_password("a long enough password 123")
    operator.save()
    browser = Client()

    response = browser.post(
        "/accounts/login/",
        {"username": operator.username, "password": "a long enough password 123"},
    )

    assert response.status_code == 302 and response["Location"] == "/"
    page = text(browser.get("/"))
    assert "<h1>Overview</h1>" in page and 'href="/alerts/"' in page


def test_a_stopped_service_is_red_and_a_use_case_without_one_is_amber(
    browser: Client, platform: Platform, filled: UseCase, stopped_service: str
) -> None:
    lonely = register(platform, "ov")

    page = text(browser.get("/"))

    stopped = tile(page, filled.name, stopped_service)
    assert stopped.startswith("state=red")
    assert "No worker is consuming: 3 messages wait" in stopped
    assert "0 consuming" in stopped and "version 1" in stopped
    # A use case nothing predicts for says so, amber
    assert "No service predicts for this use case" in tile(page, lonely.name)


def test_an_open_alert_is_red_until_acknowledged(
    browser: Client, viewer_browser: Client, filled: UseCase, postgres_dsn: str
) -> None:
    # Given an open drift alert of the use case
    alert = raise_alert(postgres_dsn, filled.name)

    # Then its use case's tiles are red with it, and the navigation counts it
    page = text(browser.get("/"))
    assert "Open alert: drift share 0.8 crossed 0.5" in page
    assert re.search(r'Alerts <span class="count"[^>]*>\d+</span>', page)

    # And the alert page links the report of the window it judged
    alerts = text(browser.get("/alerts/", {"use_case": filled.name}))
    row = re.search(rf'<tr data-alert="{alert["id"]}">(.*?)</tr>', alerts, re.DOTALL)
    assert row is not None and "open" in row[1]
    report = re.search(r'<a href="(/monitoring/reports/\?[^"]+)">', row[1])
    assert report is not None
    assert "kind=data_drift" in report[1] and "start=2025-03-02T00" in report[1]

    # When a viewer tries to acknowledge it, then the operator does
    url = f"/alerts/{filled.name}/{alert['id']}/acknowledge/"
    assert viewer_browser.post(url).status_code == 403
    done = browser.post(url, {"next": f"/alerts/?use_case={filled.name}"}, follow=True)

    # Then it says who and when, and the tile no longer holds it
    assert "Alert acknowledged (drift share 0.8 crossed 0.5) by operator" in text(done)
    assert re.search(r"acknowledged by operator, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text(done))
    assert "Open alert: drift share 0.8" not in text(browser.get("/"))


def test_retrain_this_use_case_starts_a_job_and_shows_it(
    browser: Client, retraining: Any, platform: Platform, postgres_dsn: str
) -> None:
    # Given an alert of a use case with enough training rows, whose only service uses a
    # model
    case = with_rows(platform, training_rows=150)
    service, algorithm = unique("svc"), unique("algo")
    platform.upload(algorithm, case)
    platform.bind(service, algorithm)
    raise_alert(postgres_dsn, case.name, metric="mae", value=9.0, threshold=4.0)

    # When the operator retrains from the alert
    response = browser.post(f"/alerts/{case.name}/retrain/", {"service": service})

    # Then a retraining job of the use case runs, and its page (which shows the
    # champion/challenger result when done) opens
    assert response.status_code == 302
    job_url = response["Location"]
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert re.fullmatch(r"/retraining/jobs/\d+/", job_url), said
    page = text(browser.get(job_url))
    assert case.name in page and service in page


def test_a_stalled_api_is_named_within_seconds(browser: Client, admin_urls: Platform) -> None:
    # Given monitoring_api takes connections and never answers
    listener = socket.create_server(("127.0.0.1", 0))
    timeout, served = settings.GITS_API_TIMEOUT, settings.GITS_API_URLS["monitoring_api"]
    settings.GITS_API_TIMEOUT = 2.0
    point_admin_at(monitoring_api=f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        started = time.monotonic()
        response = browser.get("/")
        took = time.monotonic() - started
    finally:
        settings.GITS_API_TIMEOUT = timeout
        point_admin_at(monitoring_api=served)
        listener.close()

    # Then the overview still answers, with what the others said, and names the silent one
    assert response.status_code == 200
    assert took < 10, took
    assert "monitoring_api is not answering" in text(response)
    assert '<span class="count unknown"' in text(response)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/admin", "/users/"),
        ("/admin/auth/user/", "/users/auth/user/"),
        ("/dash_main_dashboard", "/dashboards/main/"),
        ("/dash_monitoring/", "/dashboards/monitoring/"),
    ],
)
def test_the_original_addresses_lead_where_their_users_expect(
    browser: Client, old: str, new: str
) -> None:
    response = browser.get(old, follow=True)
    assert new in [hop for hop, _ in response.redirect_chain]


# --- The rules, on figures alone ---


def judged(**figures: Any) -> overview.Tile:
    found = overview.Tile(use_case="uc", task="regression", service="svc", **figures)
    overview.judge(found, silent=set())
    return found


def test_the_rules_give_each_state_its_reason() -> None:
    flowing = {"model": "m version 1", "rate": 4.2, "workers": 2, "recent_workers": 2}
    assert judged(**flowing).reasons == ["flowing at 4.2 messages/s; no open alerts"]
    assert judged(**flowing).state == "green"
    one_stopped = judged(**flowing | {"workers": 1})
    assert one_stopped.state == "amber"
    assert one_stopped.reasons == [
        "1 of the 2 workers active in the last 60 seconds stopped consuming"
    ]
    failing = judged(**flowing | {"failed": 30, "done": 100})
    assert failing.state == "red"
    assert failing.reasons == ["30 of 100 messages failed in the last hour"]
    assert judged(**flowing | {"failed": 1, "done": 100}).state == "amber"
    assert judged(**flowing | {"model": None}).state == "red"
    idle = judged(**flowing | {"workers": 0, "recent_workers": 0, "rate": 0.0})
    assert idle.reasons == ["no worker is consuming (no message waits)"]
    many = [{"what": f"drift score of f{i} 0.9 crossed 0.5"} for i in range(5)]
    alerted = judged(**flowing, alerts=many)
    assert alerted.state == "red" and alerted.reasons[3] == "and 2 more open alerts"
    drifting = judged(**flowing | {"drift_share": 0.6, "drift_limit": 0.5})
    assert drifting.reasons == ["drift share 0.60 is at or above its alert line 0.50"]


counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))


@given(
    rate=st.one_of(st.none(), st.floats(min_value=0, max_value=1e5)),
    waiting=counts,
    workers=counts,
    recent_workers=counts,
    failed=counts,
    extra=counts,
    dead_letters=counts,
    model=st.one_of(st.none(), st.just("m version 3")),
    drift_share=st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
    drift_limit=st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
)
def test_any_figures_give_a_state_with_reasons_in_words(
    failed: int | None, extra: int | None, **figures: Any
) -> None:
    done = None if failed is None or extra is None else failed + extra
    found = judged(failed=failed, done=done, **figures)

    # Every tile says why in words; red or amber only with a reason of that weight
    assert found.reasons and all(r and "None" not in r for r in found.reasons)
    assert found.state in {"red", "amber", "green"}
    if found.state == "green":
        assert found.reasons[0].startswith("flowing at")


def test_a_points_primary_metric_is_the_one_with_a_reference() -> None:
    values = {"drift_share": 0.1, "mae": 5.0, "reference_mae": 4.0, "estimated_mae": 4.8}
    assert overview.performance(values) == overview.Performance("mae", 5.0, 4.0, 4.8)
    early = {"drift_share": 0.1, "estimated_accuracy": 0.91}
    assert overview.performance(early) == overview.Performance("accuracy", None, None, 0.91)
    assert overview.performance({"drift_share": 0.1}) is None


# --- Errors in words ---


SETTINGS = ["MONITORING_MIN_WINDOW_ROWS", "DJANGO_API_TIMEOUT", "RETRAINING_MAX_ROWS"]


@given(
    before=st.text(alphabet=st.characters(blacklist_characters="()"), max_size=40),
    setting=st.sampled_from(SETTINGS),
    after=st.text(max_size=40),
    remark=st.booleans(),
)
def test_no_setting_name_reaches_a_user(
    before: str, setting: str, after: str, remark: bool
) -> None:
    reason = f"{before} ({setting}) {after}" if remark else f"{before} {setting} {after}"
    assert setting not in in_words(reason)


def test_field_locations_read_as_the_forms_fields() -> None:
    said = in_words("invalid request: body.tune.trials: Input should be greater than 0")
    assert said == "tune.trials: Input should be greater than 0"
    # A user's own column that looks like a setting stays as it is
    assert in_words("column TEMP_1 is not a number") == "column TEMP_1 is not a number"
    # An exception's message stays, its class name goes
    said = in_words("the file is not a loadable model file (UnpicklingError: invalid load key)")
    assert said == "the file is not a loadable model file (invalid load key)"
