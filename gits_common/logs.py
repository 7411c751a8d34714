"""How log records look: plain lines for a terminal, or one JSON object a line for a log
collector, each with the process's service and the context it was logged in (the worker,
the AMQP message, the retraining job).

The context travels in a contextvar, so it follows asyncio tasks (each copies the context
it was created in) and `asyncio.to_thread`, and never leaks between two messages handled
at once. Which format a process uses is a setting: see `settings.configure_logging`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sys
import threading
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
MAX_DEPTH = 20  # of the containers a JSON line writes out (`extra=` values)

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


def _strict(value: Any, depth: int = 0) -> Any:
    """`value` with NaN and infinities as strings: Python writes them as bare NaN and
    Infinity, which strict JSON parsers (jq, most log collectors) refuse. Containers
    deeper than MAX_DEPTH (a dict holding itself) are cut to a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= MAX_DEPTH:
        return f"<{type(value).__name__} nested deeper than {MAX_DEPTH}>"
    if isinstance(value, Mapping):
        return {str(key): _strict(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_strict(item, depth + 1) for item in value]
    return value


class PlainLines(logging.Formatter):
    """PLAIN_FORMAT, with control characters of the message (a newline or NUL in a
    message id a publisher chose) escaped, so that a record cannot forge a second line.
    A traceback still follows on lines of its own."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The line, its message on one line."""
        record.message = _CONTROL.sub(_escaped, record.message)
        return super().formatMessage(record)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


class JsonStreamHandler(logging.StreamHandler):
    """A stderr handler whose records that fail to format (arguments that do not fit
    the message, a value whose str() raises) still come out as one JSON line, not
    logging's multi-line "--- Logging error ---" block."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        """Write what is known of the record, and why it could not be written."""
        failure = sys.exc_info()[1]
        line = {
            "level": record.levelname,
            "logger": record.name,
            "service": getattr(record, "service", None),
            "message": f"a log record could not be written: {failure!r}",
            "template": _text_of(record.msg)[:1000],
        }
        # stderr itself failing leaves nothing to tell, as logging's own handleError
        with contextlib.suppress(Exception):
            self.stream.write(json.dumps(line, ensure_ascii=True, default=repr) + "\n")
            self.flush()


def _text_of(value: Any) -> str:
    """str(value), or its type's name when str() itself fails."""
    try:
        return str(value)
    except Exception:  # a record's own message is what failed: say what it was
        return f"<{type(value).__name__} whose str() failed>"


def handler(log_format: LogFormat, service: str) -> logging.Handler:
    """A stderr handler writing `log_format` lines, each knowing its service and context."""
    if log_format is LogFormat.json:
        stderr: logging.Handler = JsonStreamHandler()
        stderr.setFormatter(JsonLines())
    else:
        stderr = logging.StreamHandler()
        stderr.setFormatter(PlainLines())
    stderr.addFilter(ContextFilter(service))
    return stderr


def capture_stray_output() -> None:
    """Send Python's own writes to stderr (warnings, uncaught exceptions in the main
    thread and in other threads, exceptions ignored in `__del__` and callbacks) through
    logging, so that in JSON every line of stderr is an object a collector can read."""
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    sys.unraisablehook = _log_unraisable


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # as Python's own hook: a thread's exit says nothing
        return
    thread = args.thread.name if args.thread is not None else "a thread"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    logging.getLogger("uncaught").error("%s failed", thread, exc_info=exc_info)


def _log_unraisable(unraisable: Any) -> None:
    exc = unraisable.exc_value or unraisable.exc_type()
    logging.getLogger("uncaught").warning(
        "%s: %s",
        unraisable.err_msg or "Exception ignored in",
        repr(unraisable.object),
        exc_info=(unraisable.exc_type, exc, unraisable.exc_traceback),
    )


def _log_uncaught(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):  # Ctrl-C: no record, as Python does
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("uncaught").critical("the process failed", exc_info=(kind, value, traceback))
