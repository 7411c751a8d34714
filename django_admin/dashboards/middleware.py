"""Requests to the Dash endpoints that no dashboard can answer are the request's fault:
an unknown dashboard is a 404 and a malformed callback request a 400, never a 500
(django-plotly-dash raises KeyError for an unknown app, as in rdrf#2274, and Dash raises
on callback bodies that do not fit the layout)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)

DASH_PREFIX = "/django_plotly_dash/"
# What Dash and django-plotly-dash raise on a request that does not fit a dashboard.
MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError, json.JSONDecodeError)


class DashRequestErrors:
    """Answers 404 for an unknown dashboard and 400 for a callback request that does
    not fit it; anything else is left to Django."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """The answer to a Dash request that failed, or None for any other request."""
        if not request.path.startswith(DASH_PREFIX) or not isinstance(exc, MALFORMED):
            return None
        if isinstance(exc, KeyError) and "Unable to find" in str(exc):
            return JsonResponse({"detail": "no such dashboard"}, status=404)
        log.warning("a Dash request that does not fit its dashboard: %r", exc)
        return JsonResponse({"detail": "the request does not fit the dashboard"}, status=400)
