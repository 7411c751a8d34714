"""Log lines: plain text by default, one JSON object a line with LOG_FORMAT=json, naming
the service and, where they apply, the worker, the message and the job.

No fixture of tests/conftest.py is needed: these run with --noconftest too.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gits_common.logs import (
    ContextFilter,
    LogFormat,
    bind_process_fields,
    current_context,
    handler,
    log_context,
)
from gits_common.settings import MissingSetting, configure_logging, log_format, logging_config


class Captured:
    """A logger of its own writing through `handler` into a string."""

    def __init__(self, log_format: LogFormat, service: str = "test_service") -> None:
        self.stream = io.StringIO()
        out = handler(log_format, service)
        assert isinstance(out, logging.StreamHandler)
        out.setStream(self.stream)
        self.logger = logging.Logger(f"gits.test.{uuid.uuid4().hex[:8]}", logging.DEBUG)
        self.logger.addHandler(out)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed as strict JSON (NaN or Infinity fail it)."""
        return [strict_json(line) for line in self.text.splitlines()]


def strict_json(line: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_a_json_line_has_time_level_logger_message_and_service():
    captured = Captured(LogFormat.json, service="queue_manager")

    captured.logger.warning("model %s stored", "m:1")

    (line,) = captured.lines()
    assert captured.text.count("\n") == 1
    assert line["level"] == "WARNING"
    assert line["logger"] == captured.logger.name
    assert line["message"] == "model m:1 stored"
    assert line["service"] == "queue_manager"
    assert line["time"].endswith("+00:00")  # ISO 8601, UTC
    assert list(line)[:4] == ["time", "level", "logger", "service"]
    assert not {"worker", "message_id", "job_id", "exception"} & set(line)


def test_context_fields_are_on_the_lines_logged_inside_their_block_only():
    captured = Captured(LogFormat.json)

    captured.logger.info("before")
    with log_context(worker="host-1", message_id="m-1", job_id=None):
        captured.logger.info("outer")
        with log_context(message_id="m-2"):
            captured.logger.info("inner")
        captured.logger.info("outer again")
    captured.logger.info("after")

    before, outer, inner, outer_again, after = captured.lines()
    assert {"worker", "message_id", "job_id"}.isdisjoint(before)
    assert (outer["worker"], outer["message_id"]) == ("host-1", "m-1")
    assert "job_id" not in outer  # None is left out, not logged as null
    assert (inner["worker"], inner["message_id"]) == ("host-1", "m-2")
    assert outer_again["message_id"] == "m-1"
    assert {"worker", "message_id", "job_id"}.isdisjoint(after)


def test_a_field_given_with_the_call_wins_over_the_context():
    captured = Captured(LogFormat.json)

    with log_context(job_id=7):
        captured.logger.info("explicit", extra={"job_id": 8, "rows": 3})

    (line,) = captured.lines()
    assert (line["job_id"], line["rows"]) == (8, 3)


def test_two_messages_handled_at_once_each_keep_their_own_id():
    captured = Captured(LogFormat.json)

    async def handle(message_id: str) -> None:
        with log_context(message_id=message_id):
            await asyncio.sleep(0)  # the other message's task runs here
            captured.logger.info("handled %s", message_id)
            await asyncio.to_thread(captured.logger.info, "in a thread for %s", message_id)

    async def both() -> None:
        await asyncio.gather(handle("a"), handle("b"))

    asyncio.run(both())

    lines = captured.lines()
    assert len(lines) == 4
    for line in lines:
        assert line["message"].endswith(line["message_id"])


def test_process_fields_reach_every_thread_and_the_context_wins(monkeypatch):
    monkeypatch.setattr("gits_common.logs._process_fields", {})
    captured = Captured(LogFormat.json)
    bind_process_fields(worker="host-42", job_id=None)

    asyncio.run(asyncio.to_thread(captured.logger.info, "from a thread"))
    with log_context(worker="override"):
        captured.logger.info("overridden")

    from_thread, overridden = captured.lines()
    assert from_thread["worker"] == "host-42"
    assert "job_id" not in from_thread
    assert overridden["worker"] == "override"
    assert current_context() == {"worker": "host-42"}


def test_an_exception_is_on_its_line():
    captured = Captured(LogFormat.json)

    try:
        raise RuntimeError("the store went away\nsecond line")
    except RuntimeError:
        captured.logger.exception("job failed")

    (line,) = captured.lines()
    assert line["message"] == "job failed"
    assert line["level"] == "ERROR"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "RuntimeError: the store went away\nsecond line" in line["exception"]


def test_plain_stays_plain_text():
    captured = Captured(LogFormat.plain)

    with log_context(worker="host-1"):
        captured.logger.warning("model %s stored", "m:1")

    (line,) = captured.text.splitlines()
    assert line.endswith(f" WARNING {captured.logger.name}: model m:1 stored")
    assert not line.startswith("{")


def test_log_format_is_plain_by_default_and_anything_else_is_refused_naming_it(monkeypatch):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert log_format() is LogFormat.plain
    monkeypatch.setenv("LOG_FORMAT", " JSON ")
    assert log_format() is LogFormat.json

    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(MissingSetting, match="LOG_FORMAT is 'xml'; it must be plain or json"):
        log_format()


def test_logging_configured_already_is_left_as_it_is(monkeypatch):
    # A test's log capture (or a program embedding a service) keeps its handlers and
    # level, as with logging.basicConfig; a wrong LOG_FORMAT is still refused.
    root = logging.getLogger()
    theirs = logging.NullHandler()
    monkeypatch.setattr(root, "handlers", [theirs])
    monkeypatch.setattr(root, "level", logging.DEBUG)
    monkeypatch.setenv("LOG_FORMAT", "json")

    configure_logging("ml_data_loader")

    assert root.handlers == [theirs]
    assert root.level == logging.DEBUG
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    with pytest.raises(MissingSetting, match="LOG_FORMAT"):
        configure_logging("ml_data_loader")


def test_the_logging_config_sends_every_logger_through_one_handler(monkeypatch):
    # uvicorn's loggers (log_config=None) and Django's have no handler of their own:
    # they reach the root's, so they are formatted as every other line.
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "debug")

    config = logging_config("django_admin")

    assert config["root"] == {"handlers": ["stderr"], "level": "DEBUG"}
    stderr = dict(config["handlers"]["stderr"])
    made = stderr.pop("()")(**stderr)
    assert any(isinstance(f, ContextFilter) and f.service == "django_admin" for f in made.filters)
    assert made.formatter is not None and made.formatter.__class__.__name__ == "JsonLines"


# Any text, lone surrogates, NUL and line separators included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def as_logged(value: Any) -> Any:
    """What a value reads as in a JSON line: NaN and infinities become their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: as_logged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_logged(item) for item in value]
    return value


@settings(max_examples=200, deadline=None)
@given(
    message=ANY_TEXT,
    extra=st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), JSON_VALUES, max_size=4),
    context=st.dictionaries(st.sampled_from(["worker", "message_id", "job_id"]), ANY_TEXT),
)
def test_any_message_and_values_give_exactly_one_parseable_line(message, extra, context):
    captured = Captured(LogFormat.json)

    with log_context(**context):
        captured.logger.error(message, extra=extra)

    text = captured.text
    assert text.endswith("\n") and text.count("\n") == 1
    assert text.isascii()  # no separator a reader could split on, whatever the encoding
    line = strict_json(text)
    assert line["message"] == message
    for name, value in {**context, **extra}.items():
        assert line[name] == as_logged(value)


# --- What a breaker tried (#16): every case still one line, and the caller goes on ---


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize(
    ("message", "args"),
    [("%s and %s", ("one",)), ("%d", (10**5000,)), (Unprintable(), ())],
    ids=["arguments-missing", "int-too-long", "str-raises"],
)
def test_a_record_that_cannot_be_written_is_still_one_json_line(message, args):
    captured = Captured(LogFormat.json)

    captured.logger.error(message, *args)

    (line,) = captured.lines()
    assert line["message"].startswith("a log record could not be written: ")
    assert line["level"] == "ERROR" and line["service"] == "test_service"


def test_a_value_holding_itself_is_cut_not_a_crash():
    captured = Captured(LogFormat.json)
    looped: dict[str, Any] = {}
    looped["self"] = looped

    captured.logger.info("x", extra={"looped": looped})

    (line,) = captured.lines()
    assert "nested deeper than" in json.dumps(line["looped"])


@given(message_id=st.text())
def test_a_plain_line_cannot_be_split_by_what_it_quotes(message_id):
    captured = Captured(LogFormat.plain)

    captured.logger.warning("dead-lettered message %s: not JSON", message_id)

    assert captured.text.count("\n") == 1 and "\x00" not in captured.text


STRAY = """
import gc, sys, threading, warnings
from gits_common.settings import configure_logging
configure_logging("stray")
warnings.warn("a warning")
thread = threading.Thread(target=lambda: 1 / 0, name="worker-thread")
thread.start(); thread.join()
class Noisy:
    def __del__(self):
        raise ValueError("in __del__")
Noisy(); gc.collect()
raise SystemExit(1 / 0)
"""


def test_in_json_every_line_a_process_writes_to_stderr_is_an_object(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", STRAY],
        env={**os.environ, "LOG_FORMAT": "json", "GITS_ENV_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    lines = [strict_json(line) for line in done.stderr.splitlines()]
    assert done.returncode == 1
    said = " ".join(line["message"] for line in lines)
    for expected in ("a warning", "worker-thread failed", "in __del__", "the process failed"):
        assert expected in said or expected in json.dumps(lines), (expected, lines)
