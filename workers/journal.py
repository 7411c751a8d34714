"""The job records of one worker: what became of each message, sent to queue_manager
before the batch is settled. One request is on its way at a time, and the records of
every batch that finished meanwhile go together in the next (a group commit: with
several batches in flight, fewer and larger requests). While queue_manager is out of
reach the records are kept and sent again later, so the worker goes on storing
predictions with its cached model meanwhile; a full journal holds the worker back
instead of losing records."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gits_common import errors
from gits_common.clients import QueueManagerClient
from gits_common.jobs import MAX_BATCH_JOBS
from gits_common.lifecycle import pause

log = logging.getLogger(__name__)


class Journal:
    """Job records on their way to queue_manager (JobRecord's fields, one per message)."""

    def __init__(
        self, queue_manager: QueueManagerClient, *, max_kept: int, retry_seconds: float
    ) -> None:
        self._qm = queue_manager
        self.max_kept = max_kept
        self.retry_seconds = retry_seconds
        self._kept: list[dict[str, Any]] = []
        self._room = asyncio.Event()
        self._room.set()
        # records waiting for the next request, each call's with the future it awaits
        self._next: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._sending = asyncio.Lock()  # one request at a time
        self.requests = 0  # requests sent to queue_manager

    @property
    def kept(self) -> int:
        """Records waiting for queue_manager to come back."""
        return len(self._kept)

    async def record(self, records: list[dict[str, Any]], stop: asyncio.Event) -> None:
        """Send the records now; while queue_manager is out of reach (or older records
        still wait, to keep their order), keep them for `run` to send. Waits while the
        journal is full, unless the worker is stopping."""
        if not records:
            return
        if not self._kept:
            try:
                await self._together(records)
                return
            except errors.Unavailable as exc:
                log.warning("queue_manager out of reach; job records kept for later (%s)", exc)
        while len(self._kept) >= self.max_kept and not stop.is_set():
            self._room.clear()
            await _wait(self._room, stop)
        self._kept.extend(records)

    async def run(self, stop: asyncio.Event) -> None:
        """Send kept records every `retry_seconds` until the worker stops."""
        while not stop.is_set():
            await pause(stop, self.retry_seconds)
            await self.flush()

    async def flush(self) -> bool:
        """Send every kept record; False when queue_manager is still out of reach."""
        while self._kept:
            chunk = self._kept[:MAX_BATCH_JOBS]
            try:
                await self._send(chunk)
            except errors.Unavailable:
                return False
            del self._kept[: len(chunk)]
            self._room.set()
            if not self._kept:
                log.info("queue_manager is back: every kept job record is recorded")
        return True

    async def _together(self, records: list[dict[str, Any]]) -> None:
        """Send the records in the next request, with those of every other call waiting
        for it; `Unavailable` (to each caller, who keeps its own records) when
        queue_manager is out of reach or the request was cut short."""
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # read by the caller, or by nobody when it was cancelled: never "unretrieved"
        sent.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._next.append((records, sent))
        async with self._sending:
            taken, self._next = self._next, []
            outcome: errors.Unavailable | None = None
            try:
                if taken:
                    await self._send([r for part, _ in taken for r in part])
            except errors.Unavailable as exc:
                outcome = exc
            except BaseException:
                outcome = errors.Unavailable("the request with these job records was cut short")
                raise
            finally:
                for _, waiting in taken:
                    if waiting.done():
                        continue
                    if outcome is None:
                        waiting.set_result(None)
                    else:
                        waiting.set_exception(outcome)
        await sent

    async def _send(self, records: list[dict[str, Any]]) -> None:
        """One request; when queue_manager refuses it (a record it cannot store), halve
        until the refused records are found and log them: their messages are settled."""
        for start in range(0, len(records), MAX_BATCH_JOBS):
            await self._narrowed(records[start : start + MAX_BATCH_JOBS])

    async def _narrowed(self, records: list[dict[str, Any]]) -> None:
        try:
            self.requests += 1
            await self._qm.record_jobs(records)
        except errors.Unavailable:
            raise
        except errors.GitsError as exc:
            if len(records) == 1:
                job = records[0]
                log.error("job %s/%s not recorded: %s", job["service"], job["message_id"], exc)
                return
            half = len(records) // 2
            await self._narrowed(records[:half])
            await self._narrowed(records[half:])


async def _wait(event: asyncio.Event, stop: asyncio.Event) -> None:
    """Until `event` or `stop` is set."""
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
