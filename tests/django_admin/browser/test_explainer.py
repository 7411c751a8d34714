"""An explainer dashboard as an operator uses it in Chromium: built from the admin's form,
opened, switched from row to row in its individual tabs, and left by GITS's bar back to
its job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.django_admin.browser.conftest import Stack, poll, shoot

BUILD_SECONDS = 120


def test_an_explainer_page_switches_rows_and_leads_back_to_its_job(
    page: Any, stack: Stack, screenshots: Path
) -> None:
    admin = stack.urls["django_admin"]
    # Given a dashboard of the service's model on 60 of its testing rows
    page.goto(f"{admin}/retraining/explainers/")
    page.select_option("select[name=algorithm]", f"{stack.use_case.name}@1")
    page.select_option("select[name=data]", "testing")
    page.fill("input[name=max_rows]", "60")
    with page.expect_navigation():
        page.get_by_role("button", name="Build the dashboard").click()
    job_url = page.url

    def finished() -> bool:
        page.goto(job_url)
        return page.get_by_role("link", name="Open the dashboard").count() > 0

    poll(finished, bool, timeout=BUILD_SECONDS)
    assert "linear SHAP" in page.inner_text("dl.facts")  # how, in words

    # When it is opened and a row is chosen on the individual predictions tab
    page.goto(f"{job_url}page/")
    page.get_by_role("tab", name="Individual Predictions").click()
    select = page.locator("#gits-rows-individual-select")
    options = select.locator("option").all_inner_texts()
    assert len(options) >= 2  # as many as were drawn within their time (10 at most)
    select.select_option(index=len(options) - 1)

    # Then that row's prediction is drawn, and no other
    shown = page.locator("#gits-rows-individual > [data-gits-row]:visible")
    assert shown.count() == 1
    assert f"Selected index: {options[-1].split(':')[0]}" in shown.inner_text()
    assert shown.locator(".js-plotly-plot").count() >= 2  # contributions and dependence
    shoot(page, screenshots, "explainer-row")

    # And GITS's bar leads back to the job
    with page.expect_navigation():
        page.locator("#gits-nav").get_by_role("link", name="Explainer job").click()
    assert page.url == job_url
    assert page.get_by_role("link", name="Open the dashboard").count() == 1  # logged in
