"""The landing page: every use case and service at a glance (`django_admin.site.overview`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from django_admin.site import overview as figures

REFRESH_SECONDS = 15


@require_safe
def overview(request: HttpRequest) -> HttpResponse:
    """The overview's tiles, red first; the page refreshes itself."""
    found = figures.build()
    context = {"overview": found, "refresh": REFRESH_SECONDS}
    return render(request, "gits/overview.html", context)
