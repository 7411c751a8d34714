"""The admin as an operator's control room, in headless Chromium on the streaming slice:
log in and land on the overview, see a service turn red when its workers stop and back
when they start, see a drift alert turn its tiles red, follow it to the report of its
window and retrain from it; and every page at a desktop and at a phone's width, with a
screenshot of each kept in test-artifacts/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.django_admin.browser.conftest import ADMIN_PASSWORD, ADMIN_USER, Stack, poll, shoot

pytestmark = pytest.mark.slow

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
# What a page must hold for a keyboard or screen-reader user: a language, one main
# heading, and a name for every control.
ACCESSIBLE_JS = """() => {
    const unnamed = [...document.querySelectorAll('input, select, textarea, button')]
        .filter(e => e.type !== 'hidden' && e.offsetParent !== null)
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.getAttribute('title') && !(e.innerText || e.value || '').trim())
        .map(e => e.outerHTML.slice(0, 80));
    return {
        lang: document.documentElement.lang,
        h1: document.querySelectorAll('h1').length,
        unnamed: unnamed,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
    };
}"""


def log_in(chromium: Any, stack: Stack, width: int, height: int) -> Any:
    """A page of a user who logged in through the form, at that size; it lands on the
    overview."""
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{stack.urls['django_admin']}/")
    page.fill("input[name=username]", ADMIN_USER)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.locator("form [type=submit]").first.click()
    return page


def tile(page: Any, stack: Stack) -> dict[str, str]:
    """The stack's service's tile on a fresh overview: its state and its text."""
    page.goto(f"{stack.urls['django_admin']}/")
    found = page.locator(f'section.tile[data-service="{stack.service}"]')
    return {"state": found.get_attribute("data-state"), "text": found.inner_text()}


def test_the_overview_turns_red_when_workers_stop_and_on_a_drift_alert(
    chromium: Any, stack: Stack, screenshots: Path
) -> None:
    page = log_in(chromium, stack, *WIDTHS["desktop"])
    assert urlparse(page.url).path == "/"
    assert page.locator("h1").inner_text() == "Overview"

    # Given the stream flows: the service's tile counts its messages and workers
    flowing = poll(lambda: tile(page, stack), lambda t: "2 consuming" in t["text"], timeout=60)
    assert flowing["state"] != "red", flowing
    shoot(page, screenshots, "overview-flowing")

    # When its workers stop, then it turns red and says why, with the messages waiting
    for worker in ("worker-1", "worker-2"):
        stack.stop(worker)
    stopped = poll(
        lambda: tile(page, stack), lambda t: "No worker is consuming" in t["text"], timeout=60
    )
    assert stopped["state"] == "red"
    assert re.search(r"No worker is consuming: \d+ messages wait", stopped["text"])
    shoot(page, screenshots, "overview-workers-stopped")

    # And when they start again, it is red no more
    for worker in ("worker-1", "worker-2"):
        stack.start(worker, "workers", SERVICE_NAME=stack.service)
    poll(lambda: tile(page, stack), lambda t: "No worker is consuming" not in t["text"], timeout=90)

    # When monitoring's own schedule raises a drift alert (any drift score now alerts)
    with stack.http("monitoring_api") as monitoring:
        url = f"/monitoring_api/use_cases/{stack.use_case.name}/thresholds"
        monitoring.put(url, json={"feature_drift_score": 1e-9}).raise_for_status()
    alerted = poll(lambda: tile(page, stack), lambda t: "Open alert" in t["text"], timeout=60)

    # Then the tile is red with the alert in words, and the navigation counts it
    assert alerted["state"] == "red"
    assert re.search(r"Open alert: drift score of \w+ [\d.e-]+ crossed", alerted["text"])
    assert int(page.locator("a.alerts-link .count").inner_text()) >= 1
    shoot(page, screenshots, "overview-drift-alert")


def test_an_alert_leads_to_its_report_and_to_a_retraining(
    chromium: Any, stack: Stack, screenshots: Path
) -> None:
    page = log_in(chromium, stack, *WIDTHS["desktop"])
    with stack.http("monitoring_api") as monitoring:
        url = f"/monitoring_api/use_cases/{stack.use_case.name}/thresholds"
        monitoring.put(url, json={"feature_drift_score": 1e-9}).raise_for_status()

    # From the overview's tile to the use case's alerts
    poll(lambda: tile(page, stack), lambda t: "Open alert" in t["text"], timeout=60)
    page.locator(f'section.tile[data-service="{stack.service}"] .links a').first.click()
    page.wait_for_selector("tr[data-alert]")
    shoot(page, screenshots, "alerts")

    # The report of the window the alert judged opens inside the admin, titled
    row = page.locator("tr[data-alert]").first
    row.locator("a", has_text="the report").click()
    page.wait_for_selector("iframe.report")
    assert page.locator("h1").inner_text() == f"Data drift of {stack.use_case.name}"
    assert "Production rows from" in page.locator("p.lead").inner_text()
    report = page.frame_locator("iframe.report")
    report.locator("body").wait_for()
    assert page.locator("a.button", has_text="Download the report").count() == 1
    shoot(page, screenshots, "alert-report")
    page.go_back()

    # Acknowledging it says who
    page.wait_for_selector("tr[data-alert]")
    page.locator("tr[data-alert]").first.locator("button", has_text="Acknowledge").click()
    page.wait_for_selector(".messages li.success")
    assert f"by {ADMIN_USER}" in page.locator(".messages").inner_text()

    # And "Retrain this use case", once confirmed, starts a job and shows it
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-alert]").first.locator("button", has_text="Retrain").click()
    page.wait_for_url(re.compile(r"/retraining/jobs/\d+/$"))
    assert stack.use_case.name in page.locator("main").inner_text()
    shoot(page, screenshots, "alert-retraining-job")


PAGES = [
    ("overview", "/"),
    ("alerts", "/alerts/"),
    ("algorithms", "/algorithms/"),
    ("algorithm", "/algorithms/{use_case}/"),
    ("services", "/services/"),
    ("service", "/services/{service}/"),
    ("retraining", "/retraining/"),
    ("retraining-start", "/retraining/start/"),
    ("promotions", "/retraining/promotions/"),
    ("explainers", "/retraining/explainers/"),
    ("reports", "/monitoring/reports/"),
    ("dashboard-main", "/dashboards/main/"),
    ("dashboard-monitoring", "/dashboards/monitoring/"),
    ("dashboard-realtime", "/dashboards/realtime/"),
    ("password", "/accounts/password/"),
]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_reads_at_a_desktop_and_a_phone_width(
    chromium: Any, stack: Stack, screenshots: Path, width: str
) -> None:
    page = log_in(chromium, stack, *WIDTHS[width])
    for name, path in PAGES:
        url = stack.urls["django_admin"] + path.format(
            use_case=stack.use_case.name, service=stack.service
        )
        response = page.goto(url)
        assert response is not None and response.status < 400, (path, response)
        found = page.evaluate(ACCESSIBLE_JS)

        # Nothing runs off the side (wide tables scroll inside themselves), the page
        # has a language and one main heading, and every control has a name
        assert found["overflow"] <= 1, (path, width, found)
        assert found["lang"] == "en" and found["h1"] == 1, (path, found)
        assert found["unnamed"] == [], (path, found)
        shoot(page, screenshots, f"page-{name}-{width}")

    # On a phone the navigation folds behind "Menu" and opens from it
    if width == "phone":
        page.goto(stack.urls["django_admin"] + "/")
        assert not page.locator("nav a", has_text="Services").is_visible()
        page.locator("label.nav-toggle-label").click()
        assert page.locator("nav a", has_text="Services").is_visible()
        shoot(page, screenshots, "navigation-phone-open")
