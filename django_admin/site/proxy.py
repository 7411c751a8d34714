"""Pages the APIs render (Evidently reports, explainer dashboards), passed to the browser."""

from __future__ import annotations

from django.http import HttpResponse

# The page runs its scripts in an origin of its own: code from a report cannot act with
# the admin's session.
SANDBOX = "sandbox allow-scripts allow-popups allow-downloads allow-forms"


def html_page(body: bytes) -> HttpResponse:
    """An HTML page from an API, served as a sandboxed document."""
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = SANDBOX
    return response
