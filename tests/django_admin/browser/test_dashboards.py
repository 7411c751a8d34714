"""The dashboards as a person sees them: log in, open each one while the pipeline
streams, and see its graphs drawn with real data; the real-time graph moves by itself.
Screenshots of each dashboard land in test-artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import override_settings

from django_admin.apis import reset_clients
from django_admin.dashboards import data
from django_admin.dashboards.dash_apps import main, monitoring, realtime
from tests.amqp_helpers import wait_until
from tests.django_admin.browser.conftest import Stack, choose, open_dashboard, poll, shoot

pytestmark = pytest.mark.slow

# Per graph of a Dash app (by the id of its dcc.Graph): each trace's name, number of
# points and newest x, read from the Plotly graph div inside the app's iframe.
TRACES_JS = """(ids) => Object.fromEntries(ids.map(id => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    const traces = (gd && gd.data) || [];
    return [id, traces.map(t => {
        const x = t.x || [];
        const newest = x.length ? String(x[x.length - 1]) : null;
        return {name: t.name || '', points: x.length, newest: newest};
    })];
}))"""
Traces = dict[str, list[dict[str, Any]]]


def traces(frame: Any, ids: list[str]) -> Traces:
    """What each graph draws now."""
    found: Traces = frame.evaluate(TRACES_JS, ids)
    return found


def wait_for_data(frame: Any, ids: list[str], *, timeout: float = 60) -> Traces:
    """The graphs' traces once every graph draws at least one point."""
    return poll(
        lambda: traces(frame, ids),
        lambda t: all(sum(trace["points"] for trace in t[i]) for i in ids),
        timeout=timeout,
    )


def line_of(lines: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The trace of that name."""
    return next(line for line in lines if line["name"] == name)


def test_a_logged_out_visitor_is_sent_to_log_in(chromium: Any, stack: Stack) -> None:
    # Given no session: the pages and the Dash endpoints behind them
    admin = stack.urls["django_admin"]
    with httpx.Client(base_url=admin, timeout=30) as anonymous:
        for path in (
            "/dashboards/main/",
            "/dashboards/monitoring/",
            "/dashboards/realtime/",
            f"/django_plotly_dash/app/{main.NAME}/",
            f"/django_plotly_dash/app/{realtime.NAME}/_dash-layout",
        ):
            response = anonymous.get(path)
            # Then each answers with the way to the login page, and no dashboard
            assert response.status_code == 302, path
            assert response.headers["location"].startswith("/accounts/login/"), path
        update = anonymous.post(f"/django_plotly_dash/app/{main.NAME}/_dash-update-component")
        assert update.status_code == 302 and "/accounts/login/" in update.headers["location"]
    # And a browser that opens a dashboard lands on the login form
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{admin}/dashboards/realtime/")
    assert "/accounts/login/" in page.url
    assert page.locator("input[name=password]").count() == 1
    context.close()


def test_main_dashboard_shows_the_pipeline_working(
    page: Any, stack: Stack, screenshots: Path
) -> None:
    # When the logged-in user opens the main dashboard while the pipeline streams
    try:
        frame = open_dashboard(page, stack, "main")
        choose(frame, "#service", stack.service)
        # The choice is kept in the page's URL, so a reload shows the same service
        wait_until(lambda: f"service={stack.service}" in page.url, timeout=10)
        page.reload()
        frame = page.wait_for_selector("iframe").content_frame()
        wait_until(lambda: stack.service in frame.inner_text("#service"), timeout=30)
        graphs = ["jobs-by-status", "row-counts", "throughput", "processing-time", "predictions"]
        # Then every graph draws real data, the ground truth among the predictions
        wait_for_data(frame, graphs, timeout=90)
        drawn = poll(
            lambda: traces(frame, graphs),
            lambda t: any(
                trace["name"].startswith("ground truth") and trace["points"]
                for trace in t["predictions"]
            ),
            timeout=60,
        )
        assert any(tr["name"].startswith("prediction") for tr in drawn["predictions"])
        # And its poison message is counted
        wait_until(lambda: frame.inner_text("#dead-letters").strip() == "1", timeout=30)
        assert int(frame.inner_text("#kpi-finished").replace(",", "")) > 0
    finally:
        shoot(page, screenshots, "main")


def test_monitoring_dashboard_shows_drift_and_performance(
    page: Any, stack: Stack, screenshots: Path
) -> None:
    # When the user opens the monitoring dashboard and picks the platform's use case
    try:
        frame = open_dashboard(page, stack, "monitoring")
        choose(frame, "#use-case", stack.use_case.name)
        # Then drift share, per-feature drift and realised performance are drawn
        drawn = wait_for_data(frame, ["drift-share", "feature-drift", "performance"], timeout=120)
        assert {tr["name"] for tr in drawn["performance"]} >= {"mae"}
        assert frame.locator("#alerts").count() == 1
    finally:
        shoot(page, screenshots, "monitoring")


def test_realtime_graph_moves_without_a_reload(page: Any, stack: Stack, screenshots: Path) -> None:
    # Given the real-time dashboard drawing the stream
    try:
        frame = open_dashboard(page, stack, "realtime")
        # (the first services are chosen until the user chooses: the idle one and ours)
        first = poll(
            lambda: traces(frame, ["live"])["live"],
            lambda t: any(trace["name"] == stack.service and trace["points"] for trace in t),
            timeout=60,
        )
        # A page that reloads loses this mark
        frame.evaluate("() => { window.gitsMark = 'still here'; }")
        shoot(page, screenshots, "realtime")
        # When a few refreshes have passed
        before = line_of(first, stack.service)
        later = poll(
            lambda: traces(frame, ["live"])["live"],
            lambda t: line_of(t, stack.service)["newest"] != before["newest"],
            timeout=4 * realtime.REFRESH_SECONDS,
        )
        # Then the newest prediction drawn is newer, and the page never reloaded
        after = line_of(later, stack.service)
        assert after["newest"] > before["newest"]
        assert 0 < after["points"] <= realtime.POINTS_PER_LINE
        assert frame.evaluate("() => window.gitsMark") == "still here"
    finally:
        shoot(page, screenshots, "realtime-later")


def test_data_functions_read_the_live_platform(stack: Stack) -> None:
    # Given the dashboards' data functions pointed at the running slice; they read with
    # the admin's read token (GITS_READ_TOKEN, the slice's too), never the admin token
    urls = {**stack.urls, "retraining_api": stack.urls["ml_data_api"]}
    with override_settings(GITS_API_URLS=urls, GITS_AMQP_URL=stack.amqp_url):
        reset_clients()
        try:
            # Then they find the service, its use case, its jobs, rows and dead letter
            services = {s.name: s for s in data.services()}
            assert services[stack.service].use_case == stack.use_case.name
            assert stack.use_case.name in data.use_case_names()
            poll(lambda: data.job_counts(stack.service)["failed"], lambda n: n >= 1, timeout=60)
            assert data.dead_letters(stack.service) == 1
            definition = data.use_case(stack.use_case.name)
            rows = data.production_rows(definition, last=50)
            assert len(rows) == 50 and rows["prediction"].notna().all()
            jobs = data.recent_jobs(stack.service, window=main.JOB_WINDOW, limit=500)
            assert data.throughput(jobs)["per_second"].sum() > 0
            history = poll(
                lambda: data.history(stack.use_case.name, window=monitoring.WINDOWS["1 hour"]),
                lambda h: len(h.values) > 0,
                timeout=60,
            )
            assert set(history.values["metric"]) >= {"drift_share", "drift_score"}
            assert history.reason is None
        finally:
            reset_clients()
