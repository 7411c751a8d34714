"""Evidently reports of a chosen window, built by the real monitoring_api and shown by the
admin, which holds the API token the browser does not."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from django.test import Client

from django_admin.dashboards.dash_apps import monitoring as dashboard
from gits_common.schemas import UseCase
from monitoring_api.settings import load_settings as monitoring_settings
from tests.django_admin.conftest import ROWS, T0, text


def test_a_drift_report_of_the_newest_rows_opens_as_a_page(
    browser: Client, monitoring: str, filled: UseCase
) -> None:
    form = text(browser.get("/monitoring/reports/"))
    assert filled.name in form and "Data drift" in form

    response = browser.get(
        "/monitoring/reports/",
        {"use_case": filled.name, "kind": "data_drift", "reference": "training", "last": ROWS},
    )

    # Then the report opens inside the admin's page, titled, with its window in words
    assert response.status_code == 200
    page = text(response)
    assert f"Data drift of {filled.name}" in page
    assert f"The newest {ROWS} production rows, compared with the training table" in page
    frame = re.search(r'<iframe class="report" src="([^"]+)"', page)
    assert frame is not None and "GITS" in page  # the admin's navigation is around it
    # And the frame holds Evidently's page, whose scripts run in a sandbox, away from
    # the admin's session
    report = browser.get("/monitoring/reports/" + html.unescape(frame[1]))
    assert report["Content-Type"].startswith("text/html")
    assert "temp_A" in text(report) and "drift" in text(report).lower()
    assert "sandbox" in report["Content-Security-Policy"]
    assert report["X-Frame-Options"] == "SAMEORIGIN"
    # And the download button gives the same report as a file named after it
    download = re.search(r'<a class="button" href="([^"]+)" download>', page)
    assert download is not None
    saved = browser.get("/monitoring/reports/" + html.unescape(download[1]))
    assert saved["Content-Disposition"] == (
        f'attachment; filename="{filled.name}-data_drift-newest-{ROWS}.html"'
    )
    assert b"temp_A" in saved.content


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
    assert "MONITORING_" not in text(response)  # a setting's name is no user's business


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
