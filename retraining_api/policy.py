"""The drift policy (off unless RETRAINING_ON_DRIFT): when monitoring_api raises a drift
alert for a use case that has a service, start a retraining job for it, unless one is
already queued or running, or one was already started for the same drift episode.

An episode is a run of drifting history points: it starts with a drift alert and ends at
the first point whose drift values cross no threshold. One episode starts one retraining
job, however many alerts its points raise (with a short alert cool-down, every point
raises one). Episodes are read from the stored jobs and history, so a restart of
retraining_api does not forget them."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from gits_common import errors
from gits_common.clients import ApiClient
from gits_common.monitoring import DRIFT_METRICS, HistoryRead, Thresholds
from retraining_api.schemas import JobKind, JobRead, RetrainingCreate
from retraining_api.service import RetrainingService

log = logging.getLogger(__name__)

ACTOR = "drift-policy"
# How far back the policy looks for the job it started for the current episode.
RECENT_JOBS = 100


class DriftPolicy:
    """Polls monitoring_api's alerts and turns new drift alerts into retraining jobs."""

    def __init__(
        self, retraining: RetrainingService, monitoring: ApiClient, *, auto_promote: bool
    ) -> None:
        self.retraining = retraining
        self.monitoring = monitoring
        self.auto_promote = auto_promote
        self.since = datetime.now(UTC)  # alerts raised before start were someone's already

    async def run_forever(self, interval: float) -> None:
        """Check every `interval` seconds; a failed check is logged and retried."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except errors.GitsError as exc:
                log.warning("drift policy check failed, will retry: %s", exc.detail)

    async def check(self) -> list[int]:
        """Start a job for each use case with new drift alerts; the new jobs' ids."""
        checked_at = datetime.now(UTC)
        services = await self.retraining.qm.services()
        started = []
        for use_case in sorted({s.use_case for s in services}):
            alerts = await self._drift_alerts(use_case)
            if not alerts or await self.retraining.active_job(use_case) is not None:
                continue
            answered = await self._answered_episode(use_case)
            if answered is not None:
                log.info(
                    "drift alert %d on %s: its episode was answered by retraining job %d",
                    alerts[0]["id"],
                    use_case,
                    answered.id,
                )
                continue
            job_id = await self._start(use_case, alerts)
            if job_id is not None:
                started.append(job_id)
        self.since = checked_at
        return started

    async def _answered_episode(self, use_case: str) -> JobRead | None:
        """The job this policy started for the use case's current drift episode, or None
        when it started none since the last calm history point (one whose drift values
        cross no threshold)."""
        jobs = await self.retraining.jobs(
            JobKind.retraining, use_case=use_case, service=None, limit=RECENT_JOBS
        )
        last = next((job for job in jobs if job.requested_by == ACTOR), None)
        if last is None:
            return None
        path = f"/monitoring_api/use_cases/{use_case}"
        history = HistoryRead.model_validate(
            await self.monitoring.request(
                "GET", f"{path}/history", params={"start": last.created_at.isoformat()}
            )
        )
        limits = Thresholds.model_validate(
            await self.monitoring.request("GET", f"{path}/thresholds")
        )
        points: dict[Any, list[tuple[str, str | None, float]]] = {}
        for value in history.values:
            if value.metric in DRIFT_METRICS:
                points.setdefault(value.time, []).append((value.metric, value.feature, value.value))
        calm = any(not limits.drift_crossings(values) for values in points.values())
        return None if calm else last

    async def _drift_alerts(self, use_case: str) -> list[dict[str, Any]]:
        params = {"since": self.since.isoformat()}
        path = f"/monitoring_api/use_cases/{use_case}/alerts"
        alerts: list[dict[str, Any]] = await self.monitoring.request("GET", path, params=params)
        return [a for a in alerts if a["metric"] in DRIFT_METRICS]

    async def _start(self, use_case: str, alerts: list[dict[str, Any]]) -> int | None:
        first = alerts[0]
        log.warning(
            "drift alert %d on %s (%s %s %.3f > %.3f): starting a retraining job",
            first["id"],
            use_case,
            first["metric"],
            first.get("feature") or "",
            first["value"],
            first["threshold"],
        )
        try:
            job = await self.retraining.start_retraining(
                RetrainingCreate(
                    use_case=use_case, auto_promote=self.auto_promote, requested_by=ACTOR
                )
            )
        except errors.InvalidInput as exc:  # e.g. several services: a person must choose
            log.warning("drift policy cannot retrain %s: %s", use_case, exc.detail)
            return None
        return job.id
