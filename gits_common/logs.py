"""How log records look: plain lines for a terminal, or one JSON object a line for a log
collector, each with the process's service and the context it was logged in (the worker,
the AMQP message, the retraining job).

The context travels in a contextvar, so it follows asyncio tasks (each copies the context
it was created in) and `asyncio.to_thread`, and never leaks between two messages handled
at once. Which format a process uses is a setting: see `settings.configure_logging`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from types import MappingProxyType, TracebackType
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# The fields `log_context` is meant for; any other name works too.
CONTEXT_FIELDS = ("worker", "message_id", "job_id")
# The order of a JSON line: what every line has, the context, the message, then the rest.
FIRST_FIELDS = ("time", "level", "logger", "service", *CONTEXT_FIELDS, "message")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Read-only default: a context is replaced by `log_context`, never changed in place.
_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "gits_log_context", default=MappingProxyType({})
)
# Fields of the whole process: a contextvar would not reach threads (an executor's).
_process_fields: dict[str, Any] = {}


class LogFormat(StrEnum):
    """What a log line is: text for people, or JSON for a collector."""

    plain = "plain"
    json = "json"


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record logged inside the block (by this task or thread, and
    the tasks it starts); a field given as None is left out, not logged as null."""
    given = {name: value for name, value in fields.items() if value is not None}
    token = _context.set({**_context.get(), **given})
    try:
        yield
    finally:
        _context.reset(token)


def bind_process_fields(**fields: Any) -> None:
    """Add `fields` to every record this process logs from now on, in any thread or
    task: what holds for the whole process, such as a worker's name. A `log_context`
    field of the same name wins; None values are left out."""
    _process_fields.update({name: value for name, value in fields.items() if value is not None})


def current_context() -> dict[str, Any]:
    """The fields a record logged here gets: the process's, then `log_context`'s."""
    return {**_process_fields, **_context.get()}


class ContextFilter(logging.Filter):
    """Puts the service and the fields of `current_context` on every record it sees
    (attached to the handler, so that records of every logger pass it). A field the
    call gave itself (`extra=`) wins over the context's."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields; never drops a record."""
        if not hasattr(record, "service"):
            record.service = self.service
        for name, value in current_context().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonLines(JsonFormatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, service, message,
    then the context and any `extra=` fields, and `exception` when there is one. The
    output is ASCII: newlines, quotes, NUL and non-ASCII text are escaped, so a record
    can never split a line or break a collector's parser."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            timestamp="time",
            # uvicorn adds a coloured copy of some messages: noise in a collector.
            reserved_attrs=[*RESERVED_ATTRS, "taskName", "color_message"],
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Put the fields every line has first, in one order (people read these too),
        and make every value valid JSON."""
        leading = [name for name in FIRST_FIELDS if name in log_data]
        ordered = {name: log_data.pop(name) for name in leading} | log_data
        return {name: _strict(value) for name, value in ordered.items()}


def _strict(value: Any) -> Any:
    """`value` with NaN and infinities as strings: Python writes them as bare NaN and
    Infinity, which strict JSON parsers (jq, most log collectors) refuse."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_strict(item) for item in value]
    return value


def handler(log_format: LogFormat, service: str) -> logging.Handler:
    """A stderr handler writing `log_format` lines, each knowing its service and context."""
    stderr = logging.StreamHandler()
    stderr.addFilter(ContextFilter(service))
    stderr.setFormatter(
        JsonLines() if log_format is LogFormat.json else logging.Formatter(PLAIN_FORMAT)
    )
    return stderr


def capture_stray_output() -> None:
    """Send Python's own writes to stderr, warnings and uncaught exceptions, through
    logging, so that in JSON every line of stderr is an object a collector can read."""
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):  # Ctrl-C: no record, as Python does
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("uncaught").critical("the process failed", exc_info=(kind, value, traceback))
