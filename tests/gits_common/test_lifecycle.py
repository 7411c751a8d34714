"""How the long-running processes wait: retries that say why once, then now and then."""

from __future__ import annotations

import logging

from tenacity import RetryCallState

from gits_common import errors, lifecycle


def waits(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for")]


def test_a_long_wait_is_said_once_then_every_half_minute(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="tests")
    now = [1000.0]
    monkeypatch.setattr(lifecycle.time, "monotonic", lambda: now[0])
    before_sleep = lifecycle.log_while_waiting(
        logging.getLogger("tests"), "waiting for use case %s: %s", "pq"
    )
    state = RetryCallState(None, None, (), {})
    state.set_exception((errors.NotFound, errors.NotFound("not yet"), None))

    said = []
    for second in range(0, 95, 2):  # a retry every 2 s for 95 s
        now[0] = 1000.0 + second
        before_sleep(state)
        said.append(len(waits(caplog)))

    assert said[0] == 1  # at once
    assert said[-1] == 4  # at 0, 30, 60 and 90 s
    assert waits(caplog)[0] == "waiting for use case pq: not yet"
