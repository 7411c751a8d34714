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
