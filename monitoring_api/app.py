"""Builds the monitoring_api application from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from gits_common import errors
from gits_common.clients import ApiClient, MlDataClient, QueueManagerClient
from gits_common.http import Lifespan, create_api
from gits_common.metrics import instrument_api
from gits_common.monitoring import Thresholds
from gits_common.postgres import Database, add_health_route
from gits_common.settings import Role
from monitoring_api.gauges import HistoryGauges
from monitoring_api.models import Models
from monitoring_api.routes import router
from monitoring_api.service import ReportService
from monitoring_api.settings import Settings
from monitoring_api.sources import Sources
from monitoring_api.tasks import TaskService
from monitoring_api.watch import Watch, WatchSettings
from monitoring_api.webhooks import WebhookPolicy

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # thresholds are the largest body this API takes


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app: every route behind the bearer token except /health."""
    db = Database(
        settings.postgres.dsn("monitoring_api"),
        minconn=settings.pool_min,
        maxconn=settings.pool_max,
    )
    ml_data = MlDataClient(settings.ml_data_api_url, settings.tokens[Role.read])
    # Model files are the runtime role's: monitoring predicts the reference with them.
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.tokens[Role.runtime])
    sources = Sources(ml_data, max_rows=settings.max_rows, reference_rows=settings.reference_rows)
    models = Models(queue_manager)
    reports = ReportService(
        sources, models, min_rows=settings.min_rows, cache_size=settings.report_cache_size
    )
    tasks = TaskService(
        sources, models, min_rows=settings.min_rows, cache_size=settings.report_cache_size
    )
    watch = Watch(db, sources, models, _watch_settings(settings), tasks)

    lifespan = _lifespan(watch, settings.interval_seconds, [ml_data, queue_manager], db)
    app = create_api(
        title="GITS monitoring_api",
        summary="Data quality, drift and model performance of production data against the "
        "reference data; metric history and alerts",
        router=router,
        tokens=settings.tokens,
        max_body_bytes=MAX_BODY_BYTES,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.reports = reports
    app.state.watch = watch
    app.state.tasks = tasks

    add_health_route(app, db, watch.prepare)
    instrument_api(app, service="monitoring_api").register(HistoryGauges(db))

    return app


def _watch_settings(settings: Settings) -> WatchSettings:
    return WatchSettings(
        window_rows=settings.window_rows,
        min_rows=settings.min_window_rows,
        min_labelled=settings.min_labelled,
        cooldown=timedelta(seconds=settings.alert_cooldown_seconds),
        webhook_timeout=settings.webhook_timeout_seconds,
        webhooks=WebhookPolicy(allowed=settings.webhook_allowed_hosts),
        defaults=Thresholds(
            drift_share=settings.default_drift_share,
            feature_drift_score=settings.default_feature_drift_score,
            anomaly_rate=settings.default_anomaly_rate,
        ),
    )


def _lifespan(watch: Watch, interval: float, clients: list[ApiClient], db: Database) -> Lifespan:
    """Prepare the tables and start the schedule; at the end stop it and close it all."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(watch.prepare)
        except errors.Unavailable as exc:
            log.warning("starting without the database (%s); will retry on each request", exc)
        schedule = None
        if interval > 0:
            schedule = asyncio.create_task(watch.run_forever(interval))
        else:
            log.info("MONITORING_INTERVAL_SECONDS is 0: no scheduled history points")
        yield
        if schedule is not None:
            schedule.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schedule
        await asyncio.gather(watch.close(), *(client.close() for client in clients))
        db.close()

    return lifespan
