"""Every query retraining_api runs, on its own tables: jobs (retraining and explainer)
and the promotion history. Functions take a connection and keyword arguments."""

from __future__ import annotations

from typing import Any

from psycopg2.extensions import connection as Connection
from psycopg2.extras import Json, RealDictCursor

from retraining_api.schemas import JobKind, JobRead, PromotionRead

SCHEMA_LOCK = 0x6A177  # pg_advisory_xact_lock key serialising DDL between replicas
INTERRUPTED = "interrupted: retraining_api stopped while the job was queued or running"
JOB_COLUMNS = (
    "id, kind, use_case, service, status, stage, percent, request, result, error, "
    "requested_by, created_at, started_at, finished_at"
)


def ensure_schema(*, conn: Connection) -> None:
    """Create the tables if missing."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        cur.execute(
            """CREATE TABLE IF NOT EXISTS retraining_jobs (
                   id bigserial PRIMARY KEY,
                   kind text NOT NULL,
                   use_case text NOT NULL,
                   service text,
                   status text NOT NULL DEFAULT 'queued',
                   stage text NOT NULL DEFAULT 'queued',
                   percent integer NOT NULL DEFAULT 0,
                   request jsonb NOT NULL,
                   result jsonb,
                   error text,
                   requested_by text NOT NULL,
                   cache_key text,
                   created_at timestamptz NOT NULL DEFAULT now(),
                   started_at timestamptz,
                   finished_at timestamptz)"""
        )
        cur.execute(
            "CREATE INDEX IF NOT EXISTS retraining_jobs_kind_created "
            "ON retraining_jobs (kind, created_at DESC)"
        )
        # One live explainer per model and data: a second identical request gets it.
        cur.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS retraining_jobs_cache_key "
            "ON retraining_jobs (cache_key) WHERE status <> 'failed'"
        )
        cur.execute(
            """CREATE TABLE IF NOT EXISTS retraining_promotions (
                   id bigserial PRIMARY KEY,
                   action text NOT NULL,
                   service text NOT NULL,
                   use_case text NOT NULL,
                   from_version text,
                   to_version text NOT NULL,
                   job_id bigint REFERENCES retraining_jobs (id),
                   requested_by text NOT NULL,
                   at timestamptz NOT NULL DEFAULT now(),
                   metrics jsonb)"""
        )


def insert_job(
    *,
    conn: Connection,
    kind: JobKind,
    use_case: str,
    service: str | None,
    request: dict[str, Any],
    requested_by: str,
    cache_key: str | None = None,
) -> JobRead | None:
    """A new queued job; None when a live job already has the same cache key."""
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            f"""INSERT INTO retraining_jobs (kind, use_case, service, request, requested_by,
                    cache_key) VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (cache_key) WHERE status <> 'failed' DO NOTHING
                RETURNING {JOB_COLUMNS}""",
            (kind.value, use_case, service, Json(request), requested_by, cache_key),
        )
        row = cur.fetchone()
    return JobRead.model_validate(row) if row else None


def get_job(*, conn: Connection, job_id: int) -> JobRead | None:
    """One job, or None."""
    return _one(conn, f"SELECT {JOB_COLUMNS} FROM retraining_jobs WHERE id = %s", (job_id,))


def find_job_by_cache_key(*, conn: Connection, cache_key: str) -> JobRead | None:
    """The live (queued, running or finished) job with this cache key, or None."""
    return _one(
        conn,
        f"SELECT {JOB_COLUMNS} FROM retraining_jobs WHERE cache_key = %s AND status <> 'failed'",
        (cache_key,),
    )


def list_jobs(
    *,
    conn: Connection,
    kind: JobKind,
    use_case: str | None = None,
    service: str | None = None,
    active_only: bool = False,
    limit: int = 100,
) -> list[JobRead]:
    """Jobs of a kind, newest first."""
    query = f"SELECT {JOB_COLUMNS} FROM retraining_jobs WHERE kind = %s"
    params: list[Any] = [kind.value]
    for column, value in (("use_case", use_case), ("service", service)):
        if value is not None:
            query += f" AND {column} = %s"
            params.append(value)
    if active_only:
        query += " AND status IN ('queued', 'running')"
    query += " ORDER BY created_at DESC, id DESC LIMIT %s"
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, (*params, limit))
        return [JobRead.model_validate(row) for row in cur.fetchall()]


def set_progress(*, conn: Connection, job_id: int, stage: str, percent: int) -> None:
    """Record a running job's stage; the first call marks it started."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE retraining_jobs SET status = 'running', stage = %s, percent = %s,
                   started_at = coalesce(started_at, now())
               WHERE id = %s AND status IN ('queued', 'running')""",
            (stage, percent, job_id),
        )


def finish_job(*, conn: Connection, job_id: int, result: dict[str, Any]) -> None:
    """Mark a job finished with its result."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE retraining_jobs SET status = 'finished', stage = 'finished',
                   percent = 100, result = %s, finished_at = now(),
                   started_at = coalesce(started_at, now())
               WHERE id = %s""",
            (Json(result), job_id),
        )


def fail_job(*, conn: Connection, job_id: int, error: str) -> None:
    """Mark a job failed with the reason."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE retraining_jobs SET status = 'failed', error = %s, finished_at = now()
               WHERE id = %s AND status <> 'failed'""",
            (error, job_id),
        )


def merge_result(*, conn: Connection, job_id: int, patch: dict[str, Any]) -> None:
    """Add keys to a finished job's result (its decision, its promotion)."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE retraining_jobs SET result = coalesce(result, '{}') || %s WHERE id = %s",
            (Json(patch), job_id),
        )


def fail_interrupted(*, conn: Connection) -> int:
    """Fail the jobs a previous process left queued or running; how many there were."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE retraining_jobs SET status = 'failed', error = %s, finished_at = now()
               WHERE status IN ('queued', 'running')""",
            (INTERRUPTED,),
        )
        return int(cur.rowcount)


def insert_promotion(
    *,
    conn: Connection,
    action: str,
    service: str,
    use_case: str,
    from_version: str | None,
    to_version: str,
    job_id: int | None,
    requested_by: str,
    metrics: dict[str, Any] | None,
) -> PromotionRead:
    """Record a promotion or a rollback."""
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            """INSERT INTO retraining_promotions (action, service, use_case, from_version,
                   to_version, job_id, requested_by, metrics)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
            (
                action,
                service,
                use_case,
                from_version,
                to_version,
                job_id,
                requested_by,
                Json(metrics) if metrics is not None else None,
            ),
        )
        return PromotionRead.model_validate(cur.fetchone())


def list_promotions(
    *, conn: Connection, service: str | None, use_case: str | None, limit: int = 100
) -> list[PromotionRead]:
    """Promotions and rollbacks, newest first."""
    query = "SELECT * FROM retraining_promotions WHERE true"
    params: list[Any] = []
    for column, value in (("service", service), ("use_case", use_case)):
        if value is not None:
            query += f" AND {column} = %s"
            params.append(value)
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query + " ORDER BY at DESC, id DESC LIMIT %s", (*params, limit))
        return [PromotionRead.model_validate(row) for row in cur.fetchall()]


def promotion_to(*, conn: Connection, service: str, version: str) -> PromotionRead | None:
    """The newest promotion that put `version` on `service`: rolling back undoes it, so
    repeated rollbacks walk back through the promotions."""
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            """SELECT * FROM retraining_promotions
               WHERE action = 'promote' AND service = %s AND to_version = %s
               ORDER BY at DESC, id DESC LIMIT 1""",
            (service, version),
        )
        row = cur.fetchone()
    return PromotionRead.model_validate(row) if row else None


def _one(conn: Connection, query: str, params: tuple[Any, ...]) -> JobRead | None:
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, params)
        row = cur.fetchone()
    return JobRead.model_validate(row) if row else None
