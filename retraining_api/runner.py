"""Runs jobs in worker processes, one job of each kind at a time, so that a minute of
PyCaret never stalls the API and a retraining job never waits behind an explainer."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from gits_common.logs import log_context
from gits_common.postgres import Database
from retraining_api import jobs, store
from retraining_api.schemas import JobKind
from retraining_api.settings import Settings

log = logging.getLogger(__name__)


class Runner:
    """A process pool per job kind; jobs queue in their pool."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        # spawn: a fork of a process running an event loop and threads is not safe.
        self._context = multiprocessing.get_context("spawn")
        self._pools = {kind: self._pool() for kind in JobKind}
        self._tasks: set[asyncio.Task[None]] = set()

    def warm_up(self) -> None:
        """Start the job processes now and let them import the ML libraries."""
        for pool in self._pools.values():
            pool.submit(jobs.warm_up)

    def submit(self, kind: JobKind, job_id: int) -> None:
        """Start a stored job in the background."""
        task = asyncio.create_task(self._run(kind, job_id), name=f"{kind.value}-job-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, kind: JobKind, job_id: int) -> None:
        with log_context(job_id=job_id):
            await self._run_in_pool(kind, job_id)

    async def _run_in_pool(self, kind: JobKind, job_id: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pools[kind], jobs.run, self.settings, kind, job_id)
        except BrokenProcessPool as exc:
            log.error("the %s job process died during job %d: %r", kind.value, job_id, exc)
            self._pools[kind] = self._pool()
            reason = f"the job process died (out of memory or killed): {exc!r}"
            await asyncio.to_thread(
                self.db.run, lambda conn: store.fail_job(conn=conn, job_id=job_id, error=reason)
            )

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=self._context)

    def close(self) -> None:
        """Stop the job processes; unfinished jobs are failed as interrupted at next start."""
        for pool in self._pools.values():
            # A running job would otherwise keep the process alive for up to its budget.
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
