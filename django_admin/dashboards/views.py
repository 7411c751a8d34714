"""The pages that embed the Dash apps."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from django_admin.dashboards.dash_apps import main, monitoring, realtime


@dataclass(frozen=True)
class Page:
    """One dashboard page: its Dash app and how tall the app's frame is."""

    title: str
    intro: str
    app_name: str
    ratio: float  # the frame's height as a share of its width


PAGES = {
    "main": Page(
        "Main dashboard",
        "Jobs, throughput, processing time and dead letters of a service, and the latest "
        "predictions of its use case as its task needs: against the ground truth "
        "(regression), confusion matrix and class balance (classification), anomaly score "
        "with threshold and flagged spans (anomaly detection).",
        main.NAME,
        1.25,
    ),
    "monitoring": Page(
        "Monitoring",
        "Data drift and realised performance over time, from monitoring_api, and its alerts.",
        monitoring.NAME,
        1.1,
    ),
    "realtime": Page(
        "Real-time predictions",
        f"The live stream of predictions, redrawn every {realtime.REFRESH_SECONDS} seconds, "
        "and for an anomaly service its score against the model's threshold.",
        realtime.NAME,
        1.05,
    ),
}


@require_safe
def dashboard(request: HttpRequest, page: str) -> HttpResponse:
    """A page with one dashboard in it (login required by the site's middleware)."""
    return render(request, "dashboards/dashboard.html", {"page": PAGES[page]})
