"""Builds the queue_manager application from its settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from gits_common import errors
from gits_common.http import create_api
from queue_manager.db import Database
from queue_manager.events import ModelEvents
from queue_manager.routes import router
from queue_manager.schemas import Health
from queue_manager.service import QueueManager
from queue_manager.settings import Settings

log = logging.getLogger(__name__)

# Room for the form fields sent beside a model file of the largest allowed size.
FORM_FIELDS_BYTES = 1024 * 1024


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app: every route behind the bearer token except / and /health."""
    db = Database(
        url=settings.mongodb_url,
        name=settings.mongodb_db,
        connect_timeout=settings.mongodb_connect_timeout,
    )
    events = ModelEvents(settings.amqp_url)
    queue_manager = QueueManager(
        db,
        events,
        max_model_bytes=settings.max_model_bytes,
        memory_max_jobs=settings.memory_max_jobs,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if db.in_memory:
            log.warning(
                "MONGODB_URL is not set: algorithms, services and jobs are kept IN MEMORY "
                "(mongomock) and LOST when queue_manager exits, and only the newest %d jobs "
                "are kept. Set MONGODB_URL to keep them.",
                settings.memory_max_jobs,
            )
        yield
        await events.close()
        db.close()

    app = create_api(
        title="GITS queue_manager",
        summary="Model files, service-to-model bindings and jobs, in MongoDB; model "
        "changes announced on RabbitMQ",
        router=router,
        token=settings.api_token,
        max_body_bytes=settings.max_model_bytes + FORM_FIELDS_BYTES,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.queue_manager = queue_manager

    @app.get("/", tags=["health"])
    def root() -> dict[str, str]:
        """Open to all, as in the original GITS."""
        return {"message": "This is the queue manager."}

    @app.get("/health", response_model=Health, tags=["health"])
    async def health() -> JSONResponse:
        """Open to all: 200 when MongoDB answers, 503 when it does not."""
        try:
            await run_in_threadpool(db.ping)
        except errors.Unavailable as exc:
            body = Health(status="degraded", mongodb=f"unavailable: {exc.detail}")
            return JSONResponse(body.model_dump(), status_code=503)
        return JSONResponse(Health(status="ok", mongodb=db.description).model_dump())

    return app
