"""Builds the ml_data_api application from its settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from gits_common import errors
from gits_common.clients import QueueManagerClient
from gits_common.http import create_api
from gits_common.metrics import instrument_api
from gits_common.postgres import Database, add_health_route
from gits_common.settings import Role
from ml_data_api.routes import router
from ml_data_api.service import MlData
from ml_data_api.settings import Settings

log = logging.getLogger(__name__)
QUEUE_MANAGER_TIMEOUT = 10.0  # seconds a delete waits for queue_manager's answer


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app: every route behind the bearer token except /health."""
    db = Database(
        settings.postgres.dsn("ml_data_api"),
        minconn=settings.pool_min,
        maxconn=settings.pool_max,
    )
    # Only asked before a use case is deleted; the read role sees every service.
    queue_manager = QueueManagerClient(
        settings.queue_manager_url, settings.tokens[Role.read], timeout=QUEUE_MANAGER_TIMEOUT
    )
    ml_data = MlData(db, max_batch_rows=settings.max_batch_rows, queue_manager=queue_manager)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(ml_data.prepare)
        except errors.Unavailable as exc:
            log.warning("starting without the database (%s); will retry on each request", exc)
        yield
        await queue_manager.close()
        db.close()

    app = create_api(
        title="GITS ml_data_api",
        summary="Training, testing and production data of every use case, in "
        "PostgreSQL/TimescaleDB",
        router=router,
        tokens=settings.tokens,
        max_body_bytes=settings.max_body_bytes,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ml_data = ml_data

    add_health_route(app, db, ml_data.prepare)
    instrument_api(app, service="ml_data_api")

    return app
