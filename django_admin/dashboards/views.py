"""The pages that embed the Dash apps. A page's query string holds its dashboard's
selection (e.g. /dashboards/main/?service=pumps_a), handed to the app as its initial
arguments, so a reload or a shared link shows what was shown; the app writes each new
selection back into the URL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from django_admin.dashboards.dash_apps import main, monitoring, realtime
from django_admin.dashboards.dash_apps.common import UrlField, initial_arguments


@dataclass(frozen=True)
class Page:
    """One dashboard page: its Dash app and how tall the app's frame is."""

    title: str
    intro: str
    app_name: str
    ratio: float  # the frame's height as a share of its width
    url_fields: Sequence[UrlField] = ()  # the selection its query string may hold


PAGES = {
    "main": Page(
        "Main dashboard",
        "Jobs, throughput, processing time and dead letters of a service, and its own "
        "latest predictions as its use case's task needs: against the ground truth "
        "(regression), confusion matrix and class balance (classification), anomaly score "
        "with threshold and flagged spans (anomaly detection). Times are in UTC.",
        main.NAME,
        1.25,
        main.URL_FIELDS,
    ),
    "monitoring": Page(
        "Monitoring",
        "Data drift and realised performance over time, from monitoring_api, and its alerts.",
        monitoring.NAME,
        1.1,
        monitoring.URL_FIELDS,
    ),
    "realtime": Page(
        "Real-time predictions",
        f"The live stream of predictions, redrawn every {realtime.REFRESH_SECONDS} seconds, "
        "and for an anomaly service its score against the model's threshold.",
        realtime.NAME,
        1.05,
        realtime.URL_FIELDS,
    ),
}


@require_safe
def dashboard(request: HttpRequest, page: str) -> HttpResponse:
    """A page with one dashboard in it (login required by the site's middleware), showing
    the selection its query string asks for (values it does not know are ignored)."""
    shown = PAGES[page]
    initial = initial_arguments(shown.url_fields, dict(request.GET.lists()))
    return render(request, "dashboards/dashboard.html", {"page": shown, "initial": initial})
