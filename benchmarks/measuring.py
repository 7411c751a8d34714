"""What a pipeline benchmark reads back: the stored rows of a run (how many, how many
distinct, their latency from the database's own clock), and the CPU time each part of
the platform spent, and how their memory moved over a run."""

from __future__ import annotations

import dataclasses
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psutil
import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from benchmarks.support import service_env
from gits_common.schemas import Table
from gits_common.settings import postgres_settings

# Where the platform's own stores run, found by process name.
STORE_PROCESSES = {"postgres": ("postgres",), "rabbitmq": ("beam.smp",)}


@contextmanager
def bench_database() -> Iterator[Connection]:
    """An autocommit connection to the database the benchmark's services use."""
    settings = dataclasses.replace(postgres_settings(), database=service_env()["POSTGRES_DB"])
    conn = psycopg2.connect(settings.dsn("bench"))
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def stored(conn: Connection, use_case: str, prefix: str, time_column: str) -> dict[str, float]:
    """Of the production rows whose message_id starts with `prefix`: `rows`, `distinct`
    message ids, and `p50_ms`/`p95_ms`/`p99_ms` of `inserted_at - <time_column>` in
    milliseconds (0 when there are no rows)."""
    query = sql.SQL(
        "SELECT count(*), count(DISTINCT message_id), percentile_cont(ARRAY[0.5, 0.95, 0.99])"
        " WITHIN GROUP (ORDER BY extract(epoch FROM inserted_at - {}))"
        " FROM {} WHERE starts_with(message_id, %s)"
    ).format(sql.Identifier(time_column), sql.Identifier(f"{use_case}_{Table.production.value}"))
    with conn.cursor() as cur:
        cur.execute(query, (prefix,))
        rows, distinct, quantiles = cur.fetchone() or (0, 0, None)
    p50, p95, p99 = [1000 * q for q in quantiles] if quantiles else (0.0, 0.0, 0.0)
    return {"rows": rows, "distinct": distinct, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def timeline(conn: Connection, use_case: str, prefix: str, time_column: str) -> list[list[float]]:
    """Of the same rows, second by second of publishing: [second from the first
    publish, messages, p50 ms, max ms] (where a latency grows or stalls)."""
    query = sql.SQL(
        "WITH r AS (SELECT {t} AS sent, extract(epoch FROM inserted_at - {t})::float8 AS latency"
        " FROM {p} WHERE starts_with(message_id, %s))"
        " SELECT floor(extract(epoch FROM sent - (SELECT min(sent) FROM r))) AS second,"
        " count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY latency), max(latency)"
        " FROM r GROUP BY second ORDER BY second"
    ).format(
        t=sql.Identifier(time_column), p=sql.Identifier(f"{use_case}_{Table.production.value}")
    )
    with conn.cursor() as cur:
        cur.execute(query, (prefix,))
        return [
            [int(second), int(n), round(1000 * float(p50), 1), round(1000 * float(worst), 1)]
            for second, n, p50, worst in cur.fetchall()
        ]


def row_count(conn: Connection, use_case: str) -> int:
    """Rows in the use case's production table."""
    table = sql.Identifier(f"{use_case}_{Table.production.value}")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
        (count,) = cur.fetchone() or (0,)
    return int(count)


def drop_use_case(conn: Connection, use_case: str) -> None:
    """Remove a benchmark's use case and its three tables from the test database."""
    with conn.cursor() as cur:
        for table in Table:
            cur.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(
                    sql.Identifier(f"{use_case}_{table.value}")
                )
            )
        cur.execute("DELETE FROM gits_use_cases WHERE name = %s", (use_case,))


def listener(url: str) -> int | None:
    """The id of the process listening on the URL's port, when one of ours is."""
    port = urlsplit(url).port
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds each group of processes has used so far, and (under
    `postgres` and `rabbitmq`) every PostgreSQL and RabbitMQ process on this machine."""
    out = {name: sum(_cpu(pid) for pid in pids) for name, pids in groups.items()}
    for name, process_names in STORE_PROCESSES.items():
        out[name] = sum(
            _cpu(p.pid) for p in psutil.process_iter(["name"]) if p.info["name"] in process_names
        )
    return out


def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


class MemoryTrack:
    """The resident memory of some processes, sampled every second in a thread while
    the `with` block runs; `summary()` compares the first and last minute (or tenth, in
    a shorter run) of each."""

    def __init__(self, pids: list[int], *, every: float = 1.0) -> None:
        self._processes = [psutil.Process(pid) for pid in pids]
        self._every = every
        self._samples: dict[int, list[float]] = {pid: [] for pid in pids}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemoryTrack:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per pid: MiB at the start and at the end (medians of the first and last
        minute, or tenth of the samples if fewer than 10 minutes), the growth in
        percent, and the peak."""
        out = {}
        for pid, samples in self._samples.items():
            if not samples:
                continue
            window = max(1, min(60, len(samples) // 10))
            start = statistics.median(samples[:window])
            end = statistics.median(samples[-window:])
            out[str(pid)] = {
                "start_mb": round(start, 1),
                "end_mb": round(end, 1),
                "growth_pct": round(100 * (end - start) / start, 1),
                "peak_mb": round(max(samples), 1),
            }
        return out

    def _sample(self) -> None:
        while not self._done.wait(self._every):
            for process in self._processes:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                self._samples[process.pid].append(rss / 2**20)
