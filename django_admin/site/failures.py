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
# A setting's name (MONITORING_MIN_WINDOW_ROWS: the prefixes of GITS's settings, so a
# user's column named TEMP_1 stays), alone or in a parenthesised remark.
_SETTING_NAME = (
    r"\b(?:CACHE|DATA_SOURCE|DEMO|DJANGO|GITS|GROUND_TRUTH|LOG|ML_DATA|MONGODB|MONITORING"
    r"|POSTGRES|QUEUE_MANAGER|RABBITMQ|RETRAINING|SERVICE|WORKER)(?:_[A-Z0-9]+)+\b"
)
_SETTING = re.compile(_SETTING_NAME)
_SETTING_REMARK = re.compile(rf"\s*\([^()]*{_SETTING_NAME}[^()]*\)")
# A Python exception's class before its message ("UnpicklingError: invalid load key"):
# the message says what happened, the class name is for the log.
_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception|Warning): ")
# Where FastAPI found a bad field: body.tune.trials is the form's tune.trials.
_LOCATION = re.compile(r"\b(?:body|query|path)\.")


def status_for(exc: errors.GitsError) -> int:
    """The HTTP status a page answers with for this error."""
    if isinstance(exc, ApiUnavailable) and exc.maybe_applied:
        return 504
    return next((code for kind, code in STATUS_CODES.items() if isinstance(exc, kind)), 400)


def describe(exc: errors.GitsError, *, changing: bool) -> str:
    """A sentence saying what went wrong and whether anything was changed, in words: no
    HTTP status, setting name or exception text (those go to the log)."""
    if isinstance(exc, ApiUnavailable):
        return _describe_unavailable(exc, changing=changing)
    if isinstance(exc, TokenRefused):
        said = (
            f"{exc.api} does not accept the admin's credentials: the admin and {exc.api} "
            "are set up with different tokens, which an administrator must fix"
        )
        return f"{said}; nothing was changed" if changing else said
    answered = _ANSWERED.match(exc.detail)
    if answered is None:
        return in_words(exc.detail)
    reason = in_words(answered["reason"])
    if changing:
        return f"{answered['api']} refused: {reason}; nothing was changed"
    return f"{answered['api']}: {reason}"


def in_words(reason: str) -> str:
    """An API's reason without what only an operator reads: setting names (with their
    parenthesised remarks), exception class names, the `invalid request:` prefix and the
    body/query/path part of field locations."""
    reason = _SETTING_REMARK.sub("", reason)
    reason = _SETTING.sub("a setting", reason)
    reason = _EXCEPTION.sub("", reason)
    reason = _LOCATION.sub("", reason.removeprefix("invalid request: "))
    return reason.strip() or "no reason given"


def _describe_unavailable(exc: ApiUnavailable, *, changing: bool) -> str:
    if exc.maybe_applied:
        return (
            f"{exc.api} is not answering: the change may or may not have been made; "
            "reload the page to see"
        )
    if exc.reached:
        answered = _ANSWERED.match(exc.detail)
        reason = in_words(answered["reason"]) if answered else "it reports a fault"
        where = f"{exc.api} cannot serve this right now ({reason})"
    else:
        where = f"{exc.api} is not answering"
    return f"{where}; nothing was changed" if changing else f"{where}; try again once it is up"


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
