"""What the admin says when an API refuses or cannot be reached: one table from domain
error to status code, and one sentence a user can act on."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_admin.apis import ApiUnavailable, BadAnswer, TokenRefused
from gits_common import errors

log = logging.getLogger(__name__)

STATUS_CODES: dict[type[errors.GitsError], int] = {
    BadAnswer: 502,
    TokenRefused: 502,  # the admin's settings, not the request: a gateway's fault
    errors.DependencyFailed: 502,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 422,
    errors.TooLarge: 413,
    errors.Unavailable: 503,
}
# The clients word a refusal as "<api> answered <status>: <reason>".
_ANSWERED = re.compile(r"^(?P<api>\w+) answered (?P<status>\d{3}): (?P<reason>.*)$", re.DOTALL)


def status_for(exc: errors.GitsError) -> int:
    """The HTTP status a page answers with for this error."""
    if isinstance(exc, ApiUnavailable) and exc.maybe_applied:
        return 504
    return next((code for kind, code in STATUS_CODES.items() if isinstance(exc, kind)), 400)


def describe(exc: errors.GitsError, *, changing: bool) -> str:
    """A sentence saying what went wrong and whether anything was changed."""
    if isinstance(exc, ApiUnavailable):
        return _describe_unavailable(exc, changing=changing)
    if isinstance(exc, TokenRefused):
        return f"{exc.detail}: nothing was changed" if changing else exc.detail
    answered = _ANSWERED.match(exc.detail)
    if answered is None:
        return exc.detail
    verb = "refused" if changing else "answered"
    outcome = ": nothing was changed" if changing else ""
    return f"{answered['api']} {verb} ({answered['status']}): {answered['reason']}{outcome}"


def _describe_unavailable(exc: ApiUnavailable, *, changing: bool) -> str:
    if exc.maybe_applied:
        return (
            f"{exc.api} at {exc.url} did not answer in time: the change may or may not "
            "have been made; reload the page to see"
        )
    if exc.reached:
        answered = _ANSWERED.match(exc.detail)
        reason = f"{answered['status']}: {answered['reason']}" if answered else exc.detail
        where = f"{exc.api} at {exc.url} cannot serve this right now ({reason})"
    elif exc.timed_out:
        where = f"{exc.api} at {exc.url} did not answer in time"
    else:
        where = f"{exc.api} is not reachable at {exc.url}"
    return f"{where}: nothing was changed" if changing else f"{where}; try again once it is up"


def is_change(request: HttpRequest) -> bool:
    """Whether the request asked for a change (anything but a read)."""
    return request.method not in {"GET", "HEAD", "OPTIONS"}


def error_page(request: HttpRequest, exc: errors.GitsError) -> HttpResponse:
    """A page of the site's layout saying what went wrong, with the matching status."""
    message = describe(exc, changing=is_change(request))
    log.warning("%s %s: %s", request.method, request.path, exc.detail)
    return render(
        request, "gits/error.html", {"message": message, "error": exc}, status=status_for(exc)
    )


class ApiErrorMiddleware:
    """Turns a domain error no view handled into a readable page instead of a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """The error page for a domain error; anything else goes on to Django."""
        if isinstance(exc, errors.GitsError):
            return error_page(request, exc)
        return None
