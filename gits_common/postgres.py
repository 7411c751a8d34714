"""A blocking psycopg2 connection pool that waits for a free connection, answers
`Unavailable` when PostgreSQL cannot be reached, and heals itself when it comes back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg2
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from psycopg2.extensions import connection as Connection
from psycopg2.pool import ThreadedConnectionPool
from pydantic import BaseModel

from gits_common.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class _ConnectionLost(Exception):
    """A pooled connection turned out to be dead (server restart, pg_terminate_backend)."""


class Database:
    """Runs units of work in transactions on pooled connections."""

    def __init__(self, dsn: str, *, minconn: int, maxconn: int, acquire_timeout: float = 30.0):
        self._dsn = dsn
        self._minconn = minconn
        self._maxconn = maxconn
        self._slots = threading.BoundedSemaphore(maxconn)
        self._acquire_timeout = acquire_timeout
        self._pool: ThreadedConnectionPool | None = None
        self._lock = threading.Lock()

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` in one transaction: committed if it returns, rolled back if it
        raises. A pooled connection found dead is dropped and the work run again on the
        next one; the failed try was rolled back with its connection, so nothing applies
        twice. When no new connection can be opened, raise `Unavailable`."""
        if not self._slots.acquire(timeout=self._acquire_timeout):
            raise Unavailable("all database connections are busy; try again shortly")
        try:
            # Every idle connection may have died together, so allow one try per slot.
            for _ in range(self._maxconn + 1):
                try:
                    return self._attempt(work)
                except _ConnectionLost as lost:
                    log.warning("dropped a dead database connection (%s)", lost.__cause__)
            raise Unavailable("database connections keep failing; try again shortly")
        finally:
            self._slots.release()

    def _attempt(self, work: Callable[[Connection], T]) -> T:
        pool = self._connect_pool()
        try:
            conn = pool.getconn()
        except psycopg2.OperationalError as exc:
            raise Unavailable(f"database unavailable: {str(exc).strip()}") from exc
        try:
            with conn:  # commit on success, roll back on error
                result = work(conn)
        except BaseException as exc:
            lost = bool(conn.closed)
            pool.putconn(conn, close=lost)
            if lost and isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
                raise _ConnectionLost from exc
            raise
        pool.putconn(conn)
        return result

    def _connect_pool(self) -> ThreadedConnectionPool:
        with self._lock:
            if self._pool is None:
                try:
                    self._pool = ThreadedConnectionPool(self._minconn, self._maxconn, self._dsn)
                except psycopg2.OperationalError as exc:
                    raise Unavailable(f"database unavailable: {str(exc).strip()}") from exc
            return self._pool

    def ping(self) -> None:
        """Raise `Unavailable` unless a trivial query succeeds."""

        def select_one(conn: Connection) -> None:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")

        self.run(select_one)

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None


class Health(BaseModel):
    """A PostgreSQL-backed service's state, as its open /health route reports it."""

    status: str
    database: str
    timescaledb: bool | None = None


def add_health_route(app: FastAPI, db: Database, prepare: Callable[[], bool]) -> None:
    """GET /health, open to all: 200 when the database answers and the service's tables
    are ready (`prepare` returns whether TimescaleDB is there), 503 when not."""

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> JSONResponse:
        try:
            db.ping()
            timescaledb = prepare()
        except Unavailable as exc:
            body = Health(status="degraded", database=f"unavailable: {exc.detail}")
            return JSONResponse(body.model_dump(), status_code=503)
        return JSONResponse(
            Health(status="ok", database="up", timescaledb=timescaledb).model_dump()
        )
