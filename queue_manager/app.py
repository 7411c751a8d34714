"""Builds the queue_manager application from its settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.http import create_api
from gits_common.metrics import instrument_api
from gits_common.postgres import Database
from gits_common.settings import Role
from queue_manager.events import ModelEvents
from queue_manager.mongo_store import MongoStore
from queue_manager.pg_store import PostgresStore
from queue_manager.routes import router
from queue_manager.sandbox import Sandbox
from queue_manager.schemas import Health
from queue_manager.service import QueueManager
from queue_manager.settings import Settings
from queue_manager.store import Store

log = logging.getLogger(__name__)

# Room for the form fields sent beside a model file of the largest allowed size.
FORM_FIELDS_BYTES = 1024 * 1024


def create_app(settings: Settings, *, sandbox: Sandbox | None = None) -> FastAPI:
    """The FastAPI app: every route behind the bearer token except / and /health. Model
    uploads are checked in `sandbox` (one of its own unless given; a given one is left
    running at shutdown)."""
    db = open_store(settings)
    events = ModelEvents(settings.amqp_url)
    ml_data = MlDataClient(settings.ml_data_api_url, settings.tokens[Role.read])
    owned = sandbox is None
    sandbox = sandbox or Sandbox(
        time_limit=settings.validation_seconds,
        memory_bytes=settings.validation_memory_bytes,
        preload=settings.sandbox_preload,
    )
    queue_manager = QueueManager(
        db,
        events,
        ml_data=ml_data,
        sandbox=sandbox,
        max_model_bytes=settings.max_model_bytes,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("algorithms, services and jobs are kept in %s", db.description)
        if owned:
            # Warm the model sandbox while nobody waits (else the first upload does).
            warming = asyncio.get_running_loop().run_in_executor(None, _warm, sandbox)
        yield
        if owned:
            warming.cancel()
            await asyncio.to_thread(sandbox.close)
        await ml_data.close()
        await events.close()
        db.close()

    app = create_api(
        title="GITS queue_manager",
        summary="Model files, service-to-model bindings and jobs, in PostgreSQL or "
        "MongoDB; model changes announced on RabbitMQ",
        router=router,
        tokens=settings.tokens,
        max_body_bytes=settings.max_model_bytes + FORM_FIELDS_BYTES,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.queue_manager = queue_manager
    instrument_api(app, service="queue_manager")

    @app.get("/", tags=["health"])
    def root() -> dict[str, str]:
        """Open to all, as in the original GITS."""
        return {"message": "This is the queue manager."}

    @app.get("/health", response_model=Health, tags=["health"])
    async def health() -> JSONResponse:
        """Open to all: 200 when the store answers, 503 when it does not."""
        try:
            await run_in_threadpool(db.ping)
        except errors.Unavailable as exc:
            body = Health(status="degraded", store=f"unavailable: {exc.detail}")
            return JSONResponse(body.model_dump(), status_code=503)
        return JSONResponse(Health(status="ok", store=db.description).model_dump())

    return app


def open_store(settings: Settings) -> Store:
    """MongoDB when MONGODB_URL is set (mongomock for a `mongomock://` URL), else the
    queue_manager schema in PostgreSQL."""
    if settings.mongodb_url:
        return MongoStore(
            url=settings.mongodb_url,
            name=settings.mongodb_db,
            connect_timeout=settings.mongodb_connect_timeout,
        )
    if settings.postgres is None:
        raise ValueError("queue_manager needs MONGODB_URL or the POSTGRES_* settings")
    db = Database(settings.postgres.dsn("queue_manager"), minconn=1, maxconn=8)
    return PostgresStore(db, schema=settings.postgres_schema)


def _warm(sandbox: Sandbox) -> None:
    try:
        sandbox.start()
    except errors.Unavailable as exc:
        log.warning("%s; the next upload tries again", exc.detail)
