"""queue_manager's stores, measured where issue #12 sets its goals: recording finished
jobs in bulk (>= 10,000 jobs/s) with 1,000,000 jobs stored, and listing and counting
jobs there (< 100 ms each). The embedded PostgreSQL store against the way before it:
mongomock, which has no indexes, measured with only 10,000 jobs stored (at a million it
would take hours)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2

from gits_common.jobs import JobRecord, JobStatus
from queue_manager.app import open_store
from queue_manager.settings import load_settings
from queue_manager.store import Store

STORED = 1_000_000  # jobs in the PostgreSQL store when reads are timed
BEFORE_STORED = 5_000  # jobs in the mongomock store when reads are timed (it slows as it grows)
BATCH = 1000  # jobs a request records (the API's limit, MAX_BATCH_JOBS)
SERVICES = 10
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def jobs(start: int, n: int) -> list[JobRecord]:
    """n finished jobs of the demo's shape, spread over SERVICES services."""
    return [
        JobRecord(
            service=f"line_{i % SERVICES}",
            message_id=f"m-{i}",
            payload={"timestamp": "2025-01-01T00:00:00Z", "features": {"T_data_1_1": 1.5}},
            last_status=JobStatus.finished,
            result=[{"message_id": f"m-{i}", "prediction": 1.0, "prediction_score": None}],
            message="Results calculated successfully.",
            model_version="product_quality:1",
            start_date=T0 + timedelta(milliseconds=i),
            end_date=T0 + timedelta(milliseconds=i + 5),
            routing_key="gits.product_quality",
            worker="bench",
        )
        for i in range(start, start + n)
    ]


def fill(store: Store, start: int, total: int) -> float:
    """Record `total` jobs from number `start` on, in batches of BATCH; jobs/s in the
    store (the time to build the batches' records, which the API spends validating the
    requests, is left out)."""
    spent = 0.0
    for at in range(start, start + total, BATCH):
        batch = jobs(at, min(BATCH, start + total - at))
        began = time.perf_counter()
        record(store, batch)
        spent += time.perf_counter() - began
    return total / spent


def record(store: Store, batch: list[JobRecord]) -> int:
    """One request's worth of finished jobs, recorded in one unit of work."""
    return store.run(lambda session: session.record_jobs(jobs=batch, now=T0))


def slowest(work: Callable[[], Any], repeats: int = 5) -> float:
    """The slowest of `repeats` runs of `work`, in milliseconds (after one warm-up)."""
    work()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    return max(times)


def reads(store: Store) -> dict[str, float]:
    """Milliseconds (slowest of 5) of the reads the API and the admin make."""
    return {
        "list_100_ms": slowest(
            lambda: store.run(
                lambda s: s.list_jobs(status=None, service=None, since=None, until=None, limit=100)
            )
        ),
        "list_100_of_a_service_ms": slowest(
            lambda: store.run(
                lambda s: s.list_jobs(
                    status=None, service="line_3", since=None, until=None, limit=100
                )
            )
        ),
        "count_all_ms": slowest(
            lambda: store.run(lambda s: s.count_jobs(service=None, since=None))
        ),
        "count_of_a_service_ms": slowest(
            lambda: store.run(lambda s: s.count_jobs(service="line_3", since=None))
        ),
        "count_last_hour_ms": slowest(
            lambda: store.run(
                lambda s: s.count_jobs(service=None, since=T0 + timedelta(seconds=STORED / 1000))
            )
        ),
    }


def run() -> dict[str, float]:
    """Jobs/s and read times of both stores, and the ratios."""
    base = load_settings()
    schema = f"qm_bench_{uuid.uuid4().hex[:8]}"
    pg = open_store(dataclasses.replace(base, mongodb_url="", postgres_schema=schema))
    before = open_store(dataclasses.replace(base, mongodb_url="mongomock://localhost"))
    try:
        result: dict[str, float] = {"before_jobs_per_s": fill(before, 0, BEFORE_STORED)}
        result.update({f"before_{k}": v for k, v in reads(before).items()})
        result["jobs_per_s"] = fill(pg, 0, STORED)
        # Recording more once a million are stored: the rate the pipeline meets.
        result["jobs_per_s_at_1m"] = fill(pg, STORED, 20 * BATCH)
        result.update(reads(pg))
        result["jobs_per_s_vs_before"] = result["jobs_per_s_at_1m"] / result["before_jobs_per_s"]
    finally:
        before.close()
        pg.close()
        _drop(schema)
    return result


def _drop(schema: str) -> None:
    settings = load_settings()
    assert settings.postgres is not None
    with psycopg2.connect(settings.postgres.dsn("benchmarks")) as conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def report(result: dict[str, float]) -> str:
    """A short table for the terminal."""
    lines = [
        "queue_manager's store: recording finished jobs in batches of 1,000, and reading them",
        f"  mongomock (before), {BEFORE_STORED:,} stored: "
        f"{result['before_jobs_per_s']:>9,.0f} jobs/s; list 100 "
        f"{result['before_list_100_ms']:.0f} ms, count {result['before_count_all_ms']:.0f} ms",
        f"  PostgreSQL, filling to {STORED:,}:     {result['jobs_per_s']:>9,.0f} jobs/s",
        f"  PostgreSQL, at {STORED:,} stored:      {result['jobs_per_s_at_1m']:>9,.0f} jobs/s"
        f"  ({result['jobs_per_s_vs_before']:.0f}x before; goal >= 10,000)",
    ]
    for key in ("list_100", "list_100_of_a_service", "count_all", "count_of_a_service"):
        lines.append(f"    {key.replace('_', ' ')}: {result[key + '_ms']:.1f} ms (goal < 100)")
    lines.append(f"    count since an hour ago: {result['count_last_hour_ms']:.1f} ms")
    return "\n".join(lines)
