"""How the long-running GITS processes stop: a signal sets an event, and every wait
wakes up when it is set, so shutdown never waits out a sleep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from tenacity import RetryCallState
from tenacity.stop import stop_base


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C); call inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class stop_when_stopped(stop_base):  # noqa: N801 (named as tenacity's own stop conditions)
    """A tenacity stop condition: give up retrying once `stop` is set."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.stop.is_set()


def log_while_waiting(
    logger: logging.Logger,
    message: str,
    *args: object,
    level: int = logging.INFO,
    every: float = 30.0,
) -> Callable[[RetryCallState], None]:
    """A tenacity `before_sleep` that logs `message` with `args` and then the error (its
    `detail` when it has one) at the first retry, then at most every `every` seconds: a
    wait for a dependency can last minutes, and a line a retry would bury the rest."""
    next_at = 0.0

    def before_sleep(state: RetryCallState) -> None:
        nonlocal next_at
        if time.monotonic() >= next_at:
            next_at = time.monotonic() + every
            error = state.outcome.exception() if state.outcome else None
            logger.log(level, message, *args, getattr(error, "detail", error))

    return before_sleep
