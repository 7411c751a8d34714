"""Evidently reports of a chosen window, built by the real monitoring_api and shown by the
admin, which holds the API token the browser does not."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from django_admin.dashboards.dash_apps import monitoring as dashboard
from gits_common.schemas import UseCase
from monitoring_api.app import create_app as create_monitoring_api
from monitoring_api.settings import load_settings as monitoring_settings
from tests.conftest import LiveServer
from tests.django_admin.conftest import Platform, point_admin_at, text, unique

T0 = datetime(2025, 3, 1, tzinfo=UTC)
ROWS = 60


@pytest.fixture(scope="module")
def monitoring(platform: Platform) -> Iterator[str]:
    """monitoring_api served on the platform's ml_data_api, with no schedule."""
    settings = dataclasses.replace(
        monitoring_settings(),
        ml_data_api_url=platform.urls["ml_data_api"],
        queue_manager_url=platform.urls["queue_manager"],
        interval_seconds=0,
        min_rows=30,
    )
    with LiveServer(create_monitoring_api(settings)) as server:
        point_admin_at(monitoring_api=server.url)
        yield server.url


def rows(n: int, *, start: datetime, production: bool) -> list[dict[str, object]]:
    """n readings a minute apart; production rows carry a message id and a prediction."""
    out: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "temp_A": 200.0 + i % 11,
            "temp_B": 300.0 + i % 7,
            "humidity": 10.0 + i % 3,
            "quality": 350.0 + i % 5,
        }
        if production:
            row |= {"message_id": unique("m"), "prediction": 351.0}
        out.append(row)
    return out


@pytest.fixture(scope="module")
def filled(platform: Platform, use_case: UseCase) -> UseCase:
    """The use case with training rows and later production rows."""
    base = f"/ml_data_api/use_cases/{use_case.name}"
    with platform.http("ml_data_api") as http:
        training = rows(ROWS, start=T0, production=False)
        http.post(f"{base}/training/rows", json={"rows": training}).raise_for_status()
        production = rows(ROWS, start=T0 + timedelta(days=1), production=True)
        http.post(f"{base}/production/rows", json={"rows": production}).raise_for_status()
    return use_case


def test_a_drift_report_of_the_newest_rows_opens_as_a_page(
    browser: Client, monitoring: str, filled: UseCase
) -> None:
    form = text(browser.get("/monitoring/reports/"))
    assert filled.name in form and "Data drift" in form

    response = browser.get(
        "/monitoring/reports/",
        {"use_case": filled.name, "kind": "data_drift", "reference": "training", "last": ROWS},
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = text(response)
    assert "temp_A" in page and "drift" in page.lower()  # Evidently's page of our columns
    # The report's scripts run in a sandbox, away from the admin's session
    assert "sandbox" in response["Content-Security-Policy"]


def test_a_time_window_is_passed_on(browser: Client, monitoring: str, filled: UseCase) -> None:
    start = T0 + timedelta(days=1)
    response = browser.get(
        "/monitoring/reports/",
        {
            "use_case": filled.name,
            "kind": "data_quality",
            "reference": "training",
            "start": start.strftime("%Y-%m-%dT%H:%M"),
            "end": (start + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"),
        },
    )

    # Ten minutes hold ten rows: monitoring_api's reason is shown on the form
    assert response.status_code == 422
    assert "too little data: 10 production row(s) in the window" in text(response)


def test_a_window_is_rows_or_times_not_both(browser: Client, monitoring: str, filled: UseCase):
    response = browser.get(
        "/monitoring/reports/",
        {
            "use_case": filled.name,
            "kind": "data_drift",
            "reference": "training",
            "last": 50,
            "start": "2025-03-02T00:00",
        },
    )
    assert response.status_code == 422
    assert "either the newest rows or a time window, not both" in text(response)


def test_the_monitoring_dashboard_shows_why_there_is_no_history(
    monitoring: str, filled: UseCase
) -> None:
    # Given 60 production rows, fewer than a history point needs
    needed = monitoring_settings().min_window_rows
    assert needed > ROWS

    # When the monitoring dashboard draws the use case
    *figures, _alerts, messages = dashboard.show_history(0, filled.name, "1 hour")

    # Then its graphs say so, with monitoring_api's counts and settings
    assert messages == []
    for figure in figures:
        shown = " ".join(a.text for a in figure.layout.annotations).replace("<br>", " ")
        assert f"too little data: {ROWS} production rows in the window" in shown
        assert f"needs at least {needed} (MONITORING_MIN_WINDOW_ROWS)" in shown
