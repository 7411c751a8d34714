"""The metric history: points computed on a schedule (or on demand), thresholds checked on
each, alerts recorded with a cool-down and POSTed to the use case's webhook."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pandas as pd
from psycopg2.extensions import connection as Connection
from pydantic import AnyHttpUrl

from gits_common import errors
from gits_common.monitoring import (
    AlertRead,
    HistoryRead,
    MetricRead,
    PointRead,
    Thresholds,
    ThresholdsUpdate,
)
from gits_common.postgres import Database
from gits_common.schemas import Table, UseCase
from monitoring_api import estimation, store
from monitoring_api.frames import Window, before, fingerprint
from monitoring_api.history import Point, compute, crossings, scored_rows
from monitoring_api.models import Models, ModelUnavailable
from monitoring_api.service import predict
from monitoring_api.sources import Sources, WindowQuery
from monitoring_api.tasks import TaskService
from monitoring_api.webhooks import WebhookPolicy, WebhookRefused, WebhookSender

log = logging.getLogger(__name__)
T = TypeVar("T")
# An alert's webhook body: what it says, not how its delivery or acknowledgement went.
NOT_IN_WEBHOOKS = {"delivery", "delivery_detail", "acknowledged_by", "acknowledged_at"}


@dataclass(frozen=True)
class WatchSettings:
    """How history points are taken and alerts raised."""

    window_rows: int
    min_rows: int
    min_labelled: int
    cooldown: timedelta
    webhook_timeout: float
    defaults: Thresholds  # for use cases that set none of their own
    webhooks: WebhookPolicy  # where alert webhooks may go besides public hosts


class Watch:
    """History points, thresholds and alerts of every use case."""

    def __init__(
        self,
        db: Database,
        sources: Sources,
        models: Models,
        config: WatchSettings,
        tasks: TaskService,
    ) -> None:
        self.db = db
        self.sources = sources
        self.models = models
        self.config = config
        self.tasks = tasks  # fits the estimators whose estimates a point records
        self.webhooks = WebhookSender(config.webhooks, timeout=config.webhook_timeout)
        self._last_seen: dict[str, str] = {}  # use case -> fingerprint of its last point's data
        self._failed: dict[str, str] = {}  # use case -> why its last scheduled point failed
        self.next_due: datetime | None = None  # the next scheduled pass; None: no schedule
        self.timescaledb: bool | None = None

    def prepare(self) -> bool:
        """Create monitoring_api's tables if needed (blocking); True on TimescaleDB."""
        if self.timescaledb is None:
            self.timescaledb = self.db.run(lambda conn: store.ensure_schema(conn=conn))
            if self.timescaledb:
                log.info("TimescaleDB found: the metric history is a hypertable")
            else:
                log.info(
                    "TimescaleDB not installed: the metric history is a plain table with a "
                    "(use_case, time) index"
                )
        return self.timescaledb

    async def thresholds(self, name: str) -> Thresholds:
        """A use case's thresholds (MONITORING_DEFAULT_* until it sets its own)."""
        await self.sources.use_case(name)
        return await self._limits(name)

    async def _limits(self, name: str) -> Thresholds:
        found = await self._run(lambda conn: store.select_thresholds(conn=conn, use_case=name))
        return self.config.defaults if found is None else Thresholds.model_validate(found)

    async def set_thresholds(self, name: str, change: ThresholdsUpdate) -> Thresholds:
        """Set the thresholds the change gives (null turns a check off) and keep the
        others; the new thresholds. `InvalidInput` for a webhook URL alerts may not be
        sent to (monitoring_api.webhooks says which)."""
        await self.sources.use_case(name)
        if change.webhook_url is not None:
            await self._check_webhook(str(change.webhook_url))
        changes = change.model_dump(mode="json", include=change.model_fields_set)
        defaults = self.config.defaults.model_dump(mode="json")
        stored = await self._run(
            lambda conn: store.merge_thresholds(
                conn=conn, use_case=name, defaults=defaults, changes=changes
            )
        )
        return Thresholds.model_validate(stored)

    async def _check_webhook(self, url: str) -> None:
        try:
            await self.webhooks.check(url)
        except WebhookRefused as exc:
            reason = str(exc)
            raise errors.InvalidInput(
                f"webhook_url: {reason}",
                errors=[{"loc": ["body", "webhook_url"], "msg": reason, "type": "webhook_url"}],
            ) from None

    async def history(
        self, name: str, *, start: datetime | None, end: datetime | None, metric: str | None
    ) -> HistoryRead:
        """The stored values of a use case, oldest first (the newest 100,000 at most),
        and when there is none, why."""
        found = await self._run(
            lambda conn: store.select_metrics(
                conn=conn, use_case=name, start=start, end=end, metric=metric, limit=100_000
            )
        )
        reason = None if found else await self._why_empty(name)
        return HistoryRead(
            use_case=name, values=[MetricRead(**row) for row in found], reason=reason
        )

    async def latest(self, name: str) -> HistoryRead:
        """The values of the use case's newest history point, and when it has none, why."""
        newest = await self._run(lambda conn: store.newest_point(conn=conn, use_case=name))
        if newest is None:
            return HistoryRead(use_case=name, values=[], reason=await self._why_empty(name))
        end = newest + timedelta(microseconds=1)  # PostgreSQL keeps microseconds
        return await self.history(name, start=newest, end=end, metric=None)

    async def _why_empty(self, name: str) -> str:
        """Why no value was found: all are outside the range asked for, or the rows are
        too few for a point (counted now), or the last scheduled point failed, or none
        was taken yet."""
        newest = await self._run(lambda conn: store.newest_point(conn=conn, use_case=name))
        if newest is not None:
            return (
                "no value matches start, end and metric; the newest history point was "
                f"taken at {newest.astimezone(UTC).isoformat()}"
            )
        try:
            use_case = await self.sources.use_case(name)
            window = await self._window(use_case)
            too_few = self._too_few_production(window)
            if too_few is None:
                too_few = self._too_few_training(await self._reference(use_case, window))
        except errors.Unavailable as exc:
            return f"no history point yet, and its rows cannot be counted now: {exc.detail}"
        return too_few or self._not_yet(name)

    def _not_yet(self, name: str) -> str:
        """Why a use case with rows enough has no point: its last scheduled one failed,
        or none is scheduled, or the next is not due yet."""
        if name in self._failed:
            return f"no history point yet: the last scheduled one failed {self._failed[name]}"
        if self.next_due is None:
            return (
                "no history point yet, and none is scheduled (MONITORING_INTERVAL_SECONDS is "
                f"0): POST /monitoring_api/use_cases/{name}/history/run takes one"
            )
        return (
            "no history point yet: the next scheduled one is due at "
            f"{self.next_due.isoformat()} (MONITORING_INTERVAL_SECONDS)"
        )

    async def alerts(self, name: str, *, since: datetime | None) -> list[AlertRead]:
        """A use case's alerts, oldest first (the newest 10,000 at most)."""
        found = await self._run(
            lambda conn: store.select_alerts(conn=conn, use_case=name, since=since, limit=10_000)
        )
        return [AlertRead(**row) for row in found]

    async def acknowledge(self, name: str, alert_id: int, by: str) -> AlertRead:
        """Mark one of the use case's alerts acknowledged by `by` (the first
        acknowledgement stands); `NotFound` when it has no such alert."""
        found = await self._run(
            lambda conn: store.acknowledge_alert(conn=conn, use_case=name, alert_id=alert_id, by=by)
        )
        if found is None:
            raise errors.NotFound(f"use case {name} has no alert {alert_id}")
        return AlertRead(**found)

    async def open_alerts(self, limit: int) -> list[AlertRead]:
        """Every use case's alerts nobody acknowledged, newest first (`limit` at most)."""
        found = await self._run(lambda conn: store.select_open_alerts(conn=conn, limit=limit))
        return [AlertRead(**row) for row in found]

    async def run_point(self, name: str) -> PointRead:
        """Compute, store and check one history point of a use case now."""
        point = await self._point(await self.sources.use_case(name), only_if_changed=False)
        assert point is not None  # only a scheduled point is skipped
        return point

    async def run_forever(self, interval: float) -> None:
        """Take a point of every use case with production rows, every `interval` seconds."""
        while True:
            self.next_due = datetime.now(UTC) + timedelta(seconds=interval)
            await asyncio.sleep(interval)
            await self.tick()

    async def tick(self) -> None:
        """One scheduled pass; a failure is logged and the next use case goes on."""
        try:
            use_cases = await self.sources.ml_data.use_cases()
        except errors.Unavailable as exc:
            log.warning("no history points this time: %s", exc.detail)
            return
        for use_case in use_cases:
            started = datetime.now(UTC)
            failure = await self._scheduled_point(use_case)
            if failure is None:
                self._failed.pop(use_case.name, None)
            else:
                self._failed[use_case.name] = f"at {started.isoformat()}: {failure}"

    async def _scheduled_point(self, use_case: UseCase) -> str | None:
        """Take a point if the data changed; why it failed, or None."""
        try:
            await self._point(use_case, only_if_changed=True)
        except errors.InvalidInput as exc:
            log.debug("no history point for %s: %s", use_case.name, exc.detail)
            return exc.detail
        except errors.GitsError as exc:
            log.warning("history point of %s failed: %s", use_case.name, exc.detail)
            return exc.detail
        except Exception as exc:  # the loop must outlive any one use case's surprise
            log.exception("history point of %s failed", use_case.name)
            return repr(exc)
        return None

    async def _point(self, use_case: UseCase, *, only_if_changed: bool) -> PointRead | None:
        window = await self._window(use_case)
        _refuse(self._too_few_production(window))
        seen = await asyncio.to_thread(fingerprint, window.frame)
        if only_if_changed and self._last_seen.get(use_case.name) == seen:
            return None  # no new rows or labels since the last point: do not repeat it
        reference = await self._reference(use_case, window)
        _refuse(self._too_few_training(reference))
        predictions = await self._reference_predictions(use_case, window, reference)
        estimated = await self._estimated(use_case, window)
        point = await asyncio.to_thread(
            compute,
            use_case,
            window.frame,
            reference.frame,
            min_labelled=self.config.min_labelled,
            reference_predictions=predictions,
            estimated=estimated,
        )
        now = datetime.now(UTC)
        alerts = await self._store(use_case, now, point, (window.start, window.end))
        self._last_seen[use_case.name] = seen
        return PointRead(
            use_case=use_case.name,
            time=now,
            rows=point.rows,
            labelled_rows=point.labelled_rows,
            window_start=window.start or "",
            window_end=window.end or "",
            values=[MetricRead(time=now, metric=m, feature=f, value=v) for m, f, v in point.values],
            alerts=alerts,
        )

    async def _store(
        self, use_case: UseCase, now: datetime, point: Point, window: tuple[str | None, str | None]
    ) -> list[AlertRead]:
        """Store the point, raise the alerts it crosses into, and deliver them."""
        limits = await self._limits(use_case.name)
        crossed = crossings(use_case, point.values, limits)
        delivery = "pending" if limits.webhook_url else "none"
        alerts = await self._run(
            lambda conn: self._record(conn, use_case, now, point, crossed, delivery, window)
        )
        return list(await asyncio.gather(*(self._deliver(a, limits.webhook_url) for a in alerts)))

    async def _window(self, use_case: UseCase) -> Window:
        """The production rows a history point looks at: the newest few."""
        return await self.sources.production(use_case, WindowQuery(last=self.config.window_rows))

    async def _reference(self, use_case: UseCase, window: Window) -> Window:
        """What a history point compares the window with: the training table's newest
        rows, of those only the ones older than the window."""
        return before(use_case, await self.sources.reference(use_case, Table.training), window)

    def _too_few_production(self, window: Window) -> str | None:
        return self._too_few(
            window.rows,
            f"production rows in the window (the newest {self.config.window_rows} at most, "
            "MONITORING_WINDOW_ROWS)",
        )

    def _too_few_training(self, reference: Window) -> str | None:
        return self._too_few(
            reference.rows,
            "training rows older than the window's first production row, of the training "
            f"table's newest {self.sources.reference_rows} (MONITORING_REFERENCE_ROWS)",
        )

    def _too_few(self, rows: int, what: str) -> str | None:
        """Why `rows` are too few for a history point, or None when they are enough."""
        if rows >= self.config.min_rows:
            return None
        return (
            f"too little data: {rows} {what}; a history point needs at least "
            f"{self.config.min_rows} (MONITORING_MIN_WINDOW_ROWS)"
        )

    async def _reference_predictions(
        self, use_case: UseCase, window: Window, reference: Window
    ) -> pd.Series | None:
        """The model's predictions on the training rows, when the point will record
        realised performance and the model can be had; else None."""
        scored = scored_rows(use_case, window.frame)
        if len(scored) < self.config.min_labelled:
            return None
        try:
            model = await self.models.bound(use_case.name, window.frame)
            return await asyncio.to_thread(predict, use_case, model, reference.frame)
        except (ModelUnavailable, errors.Unavailable) as exc:
            log.warning("%s: no reference performance this point: %s", use_case.name, exc)
            return None

    async def _estimated(self, use_case: UseCase, window: Window) -> dict[str, float | None] | None:
        """The window's performance estimated from the model's outputs (CBPE, DLE), when
        the task has an estimator and the model and enough reference rows can be had;
        else None."""
        if use_case.task not in estimation.ESTIMATED:
            return None
        try:
            estimator, _ = await self.tasks.estimator(use_case, window)
        except (ModelUnavailable, errors.Unavailable, ValueError) as exc:
            log.info("%s: no estimated performance this point: %s", use_case.name, exc)
            return None
        return await asyncio.to_thread(estimator.estimate, window.frame)

    def _record(
        self,
        conn: Connection,
        use_case: UseCase,
        now: datetime,
        point: Point,
        crossed: list[dict[str, Any]],
        delivery: str,
        window: tuple[str | None, str | None],
    ) -> list[AlertRead]:
        """Store the point and the alerts not in their cool-down, in one transaction."""
        name = use_case.name
        store.lock_use_case(conn=conn, use_case=name)
        store.insert_metrics(conn=conn, use_case=name, time=now, values=point.values)
        recent = store.alerted_since(conn=conn, use_case=name, since=now - self.config.cooldown)
        new = [
            {**a, "delivery": delivery}
            for a in crossed
            if (a["metric"], a["feature"]) not in recent
        ]
        stored = store.insert_alerts(conn=conn, use_case=name, time=now, window=window, alerts=new)
        return [AlertRead(**row) for row in stored]

    async def _deliver(self, alert: AlertRead, url: AnyHttpUrl | None) -> AlertRead:
        """POST the alert to the webhook; the outcome is recorded on the alert, never raised."""
        if url is None:
            return alert
        payload = alert.model_dump(mode="json", exclude=NOT_IN_WEBHOOKS)
        outcome = await self.webhooks.post(str(url), payload)
        detail = outcome.detail
        if not outcome.delivered:
            log.warning(
                "alert %d of %s not delivered to its webhook: %s",
                alert.id,
                alert.use_case,
                outcome.cause or detail,
            )
        status = "delivered" if outcome.delivered else "failed"
        await self._run(
            lambda conn: store.update_delivery(
                conn=conn, alert_id=alert.id, delivery=status, detail=detail
            )
        )
        return alert.model_copy(update={"delivery": status, "delivery_detail": detail})

    async def _run(self, work: Callable[[Connection], T]) -> T:
        def prepared() -> T:
            self.prepare()  # the tables exist before the first query, even if PostgreSQL
            return self.db.run(work)  # was down when the service started

        return await asyncio.to_thread(prepared)

    async def close(self) -> None:
        """Close the webhook client."""
        await self.webhooks.close()


def _refuse(too_few: str | None) -> None:
    """`InvalidInput` with the reason, when there is one."""
    if too_few is not None:
        raise errors.InvalidInput(too_few)
