"""Builds the retraining_api application from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from gits_common import errors
from gits_common.clients import ApiClient, MlDataClient, QueueManagerClient
from gits_common.http import Lifespan, create_api
from gits_common.metrics import instrument_api
from gits_common.postgres import Database, add_health_route
from gits_common.settings import Role
from retraining_api.policy import DriftPolicy
from retraining_api.routes import router
from retraining_api.runner import Runner
from retraining_api.service import RetrainingService
from retraining_api.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # job requests are small; model files never come through here


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app: every route behind the bearer token except /health."""
    db = Database(settings.postgres.dsn("retraining_api"), minconn=1, maxconn=4)
    read = settings.tokens[Role.read]
    ml_data = MlDataClient(settings.ml_data_api_url, read)
    # Promotion and rollback register and bind models: the admin role's.
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.tokens[Role.admin])
    monitoring = ApiClient(settings.monitoring_api_url, read, name="monitoring_api")
    runner = Runner(settings, db)
    retraining = RetrainingService(settings, db, ml_data, queue_manager, runner)
    policy = DriftPolicy(retraining, monitoring, auto_promote=settings.on_drift_auto_promote)

    app = create_api(
        title="GITS retraining_api",
        summary="Retraining jobs with champion/challenger comparison, promotion and rollback, "
        "and explainer dashboards, all as background jobs with progress",
        router=router,
        tokens=settings.tokens,
        max_body_bytes=MAX_BODY_BYTES,
        lifespan=_lifespan(
            settings, retraining, policy, runner, [ml_data, queue_manager, monitoring]
        ),
    )
    app.state.settings = settings
    app.state.retraining = retraining
    app.state.policy = policy
    add_health_route(app, db, retraining.prepare)
    instrument_api(app, service="retraining_api")
    return app


def _lifespan(
    settings: Settings,
    retraining: RetrainingService,
    policy: DriftPolicy,
    runner: Runner,
    clients: list[ApiClient],
) -> Lifespan:
    """Prepare the tables and start the drift policy; at the end stop it all."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            interrupted = await run_in_threadpool(retraining.recover)
            if interrupted:
                log.warning(
                    "%d jobs were cut off by the last stop and are marked failed", interrupted
                )
        except errors.Unavailable as exc:
            log.warning("starting without the database (%s); will retry on each request", exc)
        runner.warm_up()
        watching = None
        if settings.on_drift:
            log.info("RETRAINING_ON_DRIFT: drift alerts start retraining jobs")
            watching = asyncio.create_task(policy.run_forever(settings.drift_poll_seconds))
        yield
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        runner.close()
        await asyncio.gather(*(client.close() for client in clients))
        retraining.db.close()

    return lifespan
