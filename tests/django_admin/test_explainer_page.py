"""An explainer dashboard opened through the admin carries GITS's way back: to its job,
to the retraining job whose challenger it explains, and to the list of dashboards. Its
job page says how the rows were explained. retraining_api's answers are stood in for."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from django_admin.site import retraining
from gits_common import errors
from tests.django_admin.conftest import text

AT = "2025-03-01T12:00:00+00:00"
HOW = "kernel SHAP on a 3-point k-means background, 60 feature coalitions per row"
PAGE = (
    b'<!DOCTYPE html><html><head><title>svm</title></head><body class="x">'
    b'<div id="gits-explained">240 of 900 testing rows</div></body></html>'
)
EXPLAINER: dict[str, Any] = {
    "id": 7,
    "kind": "explainer",
    "use_case": "pumps",
    "service": None,
    "status": "finished",
    "stage": "finished",
    "percent": 100,
    "request": {"model": "challenger of retraining job 3", "job_id": 3, "data": "testing"},
    "result": {
        "model": "challenger of retraining job 3",
        "data": "testing",
        "rows_explained": 240,
        "rows_available": 900,
        "shap": HOW,
        "seconds": 21.5,
    },
    "error": None,
    "requested_by": "ana",
    "created_at": AT,
    "started_at": AT,
    "finished_at": AT,
}


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What retraining_api answers for explainer job 7 (a test may replace it)."""
    said: dict[str, Any] = {"job": EXPLAINER, "page": PAGE}

    def job(job_id: int) -> dict[str, Any]:
        if isinstance(said["job"], Exception):
            raise said["job"]
        return retraining.explainer_job(said["job"])

    monkeypatch.setattr(retraining, "explainer", job)
    monkeypatch.setattr(retraining, "explainer_html", lambda job_id: said["page"])
    return said


def bar(response: Any) -> str:
    """The navigation bar at the top of the dashboard's body."""
    body = response.content.decode()
    start = body.index('<body class="x">') + len('<body class="x">')
    assert body[start:].startswith("<nav")  # first thing in the body
    return body[start : body.index("</nav>", start)]


def links(html: str) -> dict[str, str]:
    """{link text: href}."""
    found = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', html)
    return {label.strip(): href for href, label in found}


def test_the_dashboard_leads_back_to_its_job_and_the_retraining_job(
    viewer_browser: Client, answers: dict[str, Any]
) -> None:
    response = viewer_browser.get("/retraining/explainers/7/page/")

    assert response.status_code == 200
    assert "sandbox" in response["Content-Security-Policy"]  # still its own origin
    assert links(bar(response)) == {
        "GITS": "/",
        "Explainer job #7": "/retraining/explainers/7/",
        "Retraining job #3": "/retraining/jobs/3/",
        "All explainer dashboards": "/retraining/explainers/",
    }
    assert "challenger of retraining job 3 on testing rows" in bar(response)
    assert "240 of 900 testing rows" in text(response)  # the dashboard itself, untouched


def test_without_the_job_record_the_dashboard_still_leads_back(
    viewer_browser: Client, answers: dict[str, Any]
) -> None:
    answers["job"] = errors.Unavailable("retraining_api is not answering")

    response = viewer_browser.get("/retraining/explainers/7/page/")

    assert response.status_code == 200
    assert links(bar(response)) == {
        "GITS": "/",
        "Explainer job #7": "/retraining/explainers/7/",
        "All explainer dashboards": "/retraining/explainers/",
    }


def test_the_job_page_says_how_the_rows_were_explained(
    viewer_browser: Client, answers: dict[str, Any]
) -> None:
    page = text(viewer_browser.get("/retraining/explainers/7/"))

    assert "240 of 900 (21.5 s)" in page
    assert f"<dt>How</dt><dd>{HOW}</dd>" in page
    assert "All explainer dashboards" in page and "Retraining job #3" in page
