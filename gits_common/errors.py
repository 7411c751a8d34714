"""Domain errors shared by every service. They know nothing of HTTP or AMQP."""

from __future__ import annotations

from typing import Any


class GitsError(Exception):
    """Base of every error a GITS service reports to its caller."""

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(GitsError):
    """The named thing does not exist."""


class Conflict(GitsError):
    """The request contradicts what is already stored."""


class ChecksumMismatch(Conflict):
    """A stored file's bytes are not the ones recorded for it."""


class InvalidInput(GitsError):
    """The request is malformed or does not fit the use case."""


class TooLarge(GitsError):
    """The request is over a configured size limit."""


class Unavailable(GitsError):
    """A store or service this one depends on cannot be reached right now."""


class DependencyFailed(GitsError):
    """A service this one depends on answered what it should not have (a redirect, a
    400, a 401, a 500): not an outage, and not the caller's fault either."""


def said(exc: BaseException) -> str:
    """An exception as one short line a user can read: its type and the first line of
    its message, at most 300 characters of it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
