"""Every query monitoring_api runs, on its own tables: the metric history, thresholds and
alerts. Functions take a connection and keyword arguments; values always as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extras import execute_values

SCHEMA_LOCK = 0x6A176  # pg_advisory_xact_lock key serialising DDL between replicas
METRICS = sql.Identifier("monitoring_metrics")
THRESHOLDS = sql.Identifier("monitoring_thresholds")
ALERTS = sql.Identifier("monitoring_alerts")
THRESHOLD_COLUMNS = (
    "drift_share",
    "feature_drift_score",
    "performance_drop",
    "anomaly_rate",
    "webhook_url",
)
ALERT_COLUMNS = (
    "id",
    "use_case",
    "time",
    "metric",
    "feature",
    "value",
    "threshold",
    "delivery",
    "delivery_detail",
    "window_start",
    "window_end",
    "acknowledged_by",
    "acknowledged_at",
)


def ensure_schema(*, conn: Connection) -> bool:
    """Create the tables if missing; True when the metric history is a hypertable."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
        (timescaledb,) = cur.fetchone() or (False,)
        _create_metrics(cur, hypertable=bool(timescaledb))
        _create_thresholds_and_alerts(cur)
    return bool(timescaledb)


def _create_metrics(cur: Any, *, hypertable: bool) -> None:
    cur.execute(
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                   use_case text NOT NULL,
                   time timestamptz NOT NULL,
                   metric text NOT NULL,
                   feature text,
                   value double precision NOT NULL)"""
        ).format(METRICS)
    )
    if hypertable:
        cur.execute(
            "SELECT create_hypertable(%s, 'time', if_not_exists => TRUE, migrate_data => TRUE)",
            (METRICS.string,),
        )
    cur.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (use_case, time DESC)").format(
            sql.Identifier(f"{METRICS.string}_use_case_time_idx"), METRICS
        )
    )


def _create_thresholds_and_alerts(cur: Any) -> None:
    cur.execute(
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                   use_case text PRIMARY KEY,
                   drift_share double precision,
                   feature_drift_score double precision,
                   performance_drop double precision,
                   anomaly_rate double precision,
                   webhook_url text,
                   updated_at timestamptz NOT NULL DEFAULT now())"""
        ).format(THRESHOLDS)
    )
    # Added with anomaly use cases: a use case that stored its thresholds before has
    # none (null: the check is off) until it sets one.
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS anomaly_rate double precision").format(
            THRESHOLDS
        )
    )
    cur.execute(
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                   id bigserial PRIMARY KEY,
                   use_case text NOT NULL,
                   time timestamptz NOT NULL,
                   metric text NOT NULL,
                   feature text,
                   value double precision NOT NULL,
                   threshold double precision NOT NULL,
                   delivery text NOT NULL,
                   delivery_detail text)"""
        ).format(ALERTS)
    )
    cur.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} (use_case, metric, feature, time DESC)"
        ).format(sql.Identifier(f"{ALERTS.string}_key_idx"), ALERTS)
    )
    # Added with the admin's overview: the window an alert judged (for its report) and
    # who acknowledged it when; alerts stored before have none.
    cur.execute(
        sql.SQL(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS window_start text, "
            "ADD COLUMN IF NOT EXISTS window_end text, "
            "ADD COLUMN IF NOT EXISTS acknowledged_by text, "
            "ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz"
        ).format(ALERTS)
    )


def lock_use_case(*, conn: Connection, use_case: str) -> None:
    """Serialise history points of one use case until the transaction ends, so two
    replicas cannot both raise the same alert inside its cool-down."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SCHEMA_LOCK, use_case))


def insert_metrics(
    *,
    conn: Connection,
    use_case: str,
    time: datetime,
    values: Sequence[tuple[str, str | None, float]],
) -> int:
    """Store one history point's (metric, feature, value) rows."""
    with conn.cursor() as cur:
        execute_values(
            cur,
            sql.SQL("INSERT INTO {} (use_case, time, metric, feature, value) VALUES %s")
            .format(METRICS)
            .as_string(conn),
            [(use_case, time, metric, feature, value) for metric, feature, value in values],
        )
        return int(cur.rowcount)


def select_metrics(
    *,
    conn: Connection,
    use_case: str,
    start: datetime | None,
    end: datetime | None,
    metric: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The newest `limit` history values in [start, end), oldest first."""
    conditions = [sql.SQL("use_case = %s")]
    params: list[Any] = [use_case]
    for clause, value in (("time >= %s", start), ("time < %s", end), ("metric = %s", metric)):
        if value is not None:
            conditions.append(sql.SQL(clause))
            params.append(value)
    query = sql.SQL(
        "SELECT time, metric, feature, value FROM {} WHERE {} "
        "ORDER BY time DESC, metric, feature LIMIT %s"
    ).format(METRICS, sql.SQL(" AND ").join(conditions))
    with conn.cursor() as cur:
        cur.execute(query, [*params, limit])
        found = [
            {"time": t, "metric": m, "feature": f, "value": v} for t, m, f, v in cur.fetchall()
        ]
    return found[::-1]


def select_thresholds(*, conn: Connection, use_case: str) -> dict[str, Any] | None:
    """A use case's stored thresholds, or None when it has never set any."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE use_case = %s").format(
                _columns(THRESHOLD_COLUMNS), THRESHOLDS
            ),
            (use_case,),
        )
        row = cur.fetchone()
    return None if row is None else dict(zip(THRESHOLD_COLUMNS, row, strict=True))


def merge_thresholds(
    *, conn: Connection, use_case: str, defaults: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """Set the `changes` columns of a use case's thresholds and keep the others (the
    `defaults` where it has none stored yet), in one statement, so that two changes of
    different fields at once both hold; returns every column as stored."""
    first = {**defaults, **changes}
    updates = [
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in THRESHOLD_COLUMNS
        if c in changes
    ]
    query = sql.SQL(
        "INSERT INTO {} (use_case, {}) VALUES (%s, {}) "
        "ON CONFLICT (use_case) DO UPDATE SET {} RETURNING {}"
    ).format(
        THRESHOLDS,
        _columns(THRESHOLD_COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() for _ in THRESHOLD_COLUMNS),
        sql.SQL(", ").join([*updates, sql.SQL("updated_at = now()")]),
        _columns(THRESHOLD_COLUMNS),
    )
    with conn.cursor() as cur:
        cur.execute(query, (use_case, *(first[c] for c in THRESHOLD_COLUMNS)))
        row = cur.fetchone()
    assert row is not None  # an upsert always returns its row
    return dict(zip(THRESHOLD_COLUMNS, row, strict=True))


def newest_point(*, conn: Connection, use_case: str) -> datetime | None:
    """When the use case's newest history point was taken, or None before its first."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT max(time) FROM {} WHERE use_case = %s").format(METRICS), (use_case,)
        )
        row = cur.fetchone()
    return None if row is None else row[0]


def alerted_since(
    *, conn: Connection, use_case: str, since: datetime
) -> set[tuple[str, str | None]]:
    """The (metric, feature) pairs of the use case that raised an alert since `since`."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT DISTINCT metric, feature FROM {} WHERE use_case = %s AND time >= %s"
            ).format(ALERTS),
            (use_case, since),
        )
        return {(metric, feature) for metric, feature in cur.fetchall()}


def insert_alerts(
    *,
    conn: Connection,
    use_case: str,
    time: datetime,
    window: tuple[str | None, str | None],
    alerts: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Store alerts ({metric, feature, value, threshold, delivery}) raised by a point on
    `window` (its first and last production row's time); returns them stored."""
    if not alerts:
        return []
    inserted = (*ALERT_COLUMNS[1:8], "window_start", "window_end")
    rows = [(use_case, time, *(a[c] for c in ALERT_COLUMNS[3:8]), *window) for a in alerts]
    with conn.cursor() as cur:
        query = sql.SQL("INSERT INTO {} ({}) VALUES %s RETURNING {}").format(
            ALERTS, _columns(inserted), _columns(ALERT_COLUMNS)
        )
        stored = execute_values(cur, query.as_string(conn), rows, fetch=True)
    return [dict(zip(ALERT_COLUMNS, row, strict=True)) for row in stored]


def update_delivery(*, conn: Connection, alert_id: int, delivery: str, detail: str) -> None:
    """Record how an alert's webhook delivery went."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("UPDATE {} SET delivery = %s, delivery_detail = %s WHERE id = %s").format(
                ALERTS
            ),
            (delivery, detail, alert_id),
        )


def select_alerts(
    *, conn: Connection, use_case: str, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """The newest `limit` alerts of a use case since `since`, oldest first."""
    condition = sql.SQL("AND time >= %s" if since is not None else "")
    params = [use_case, *([since] if since is not None else []), limit]
    query = sql.SQL(
        "SELECT {} FROM {} WHERE use_case = %s {} ORDER BY time DESC, id DESC LIMIT %s"
    ).format(_columns(ALERT_COLUMNS), ALERTS, condition)
    with conn.cursor() as cur:
        cur.execute(query, params)
        found = [dict(zip(ALERT_COLUMNS, row, strict=True)) for row in cur.fetchall()]
    return found[::-1]


def acknowledge_alert(
    *, conn: Connection, use_case: str, alert_id: int, by: str
) -> dict[str, Any] | None:
    """Mark an alert acknowledged by `by` now, unless it was before (the first
    acknowledgement stands); the alert as stored, or None when the use case has no such
    alert."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "UPDATE {} SET acknowledged_by = %s, acknowledged_at = now() "
                "WHERE use_case = %s AND id = %s AND acknowledged_at IS NULL"
            ).format(ALERTS),
            (by, use_case, alert_id),
        )
        cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE use_case = %s AND id = %s").format(
                _columns(ALERT_COLUMNS), ALERTS
            ),
            (use_case, alert_id),
        )
        row = cur.fetchone()
    return None if row is None else dict(zip(ALERT_COLUMNS, row, strict=True))


def select_open_alerts(*, conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` alerts of every use case not yet acknowledged, newest first."""
    query = sql.SQL(
        "SELECT {} FROM {} WHERE acknowledged_at IS NULL ORDER BY time DESC, id DESC LIMIT %s"
    ).format(_columns(ALERT_COLUMNS), ALERTS)
    with conn.cursor() as cur:
        cur.execute(query, (limit,))
        return [dict(zip(ALERT_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def select_newest_values(
    *, conn: Connection, max_use_cases: int, rows_per_use_case: int
) -> list[tuple[str, str, float, datetime]]:
    """(use case, metric, value, time): the newest value of each use-case-wide metric
    (feature null) of at most `max_use_cases` use cases, each looked for among its newest
    `rows_per_use_case` such rows. Index walks only, whatever the history's length: the
    use cases by skip scan, then each one's newest rows by (use_case, time DESC)."""
    query = sql.SQL(
        """WITH RECURSIVE use_cases(use_case, n) AS (
               (SELECT use_case, 1 FROM {metrics} ORDER BY use_case LIMIT 1)
               UNION ALL
               SELECT (SELECT m.use_case FROM {metrics} m WHERE m.use_case > u.use_case
                       ORDER BY m.use_case LIMIT 1), u.n + 1
               FROM use_cases u WHERE u.use_case IS NOT NULL AND u.n < %(max_use_cases)s)
           SELECT DISTINCT ON (u.use_case, r.metric) u.use_case, r.metric, r.value, r.time
           FROM use_cases u CROSS JOIN LATERAL (
               SELECT metric, value, time FROM {metrics} m
               WHERE m.use_case = u.use_case AND m.feature IS NULL
               ORDER BY m.time DESC LIMIT %(rows)s) r
           WHERE u.use_case IS NOT NULL
           ORDER BY u.use_case, r.metric, r.time DESC"""
    ).format(metrics=METRICS)
    with conn.cursor() as cur:
        cur.execute(query, {"max_use_cases": max_use_cases, "rows": rows_per_use_case})
        return [(u, m, float(v), t) for u, m, v, t in cur.fetchall()]


def count_open_alerts(*, conn: Connection, limit: int) -> list[tuple[str, str, int]]:
    """(use case, metric, how many not yet acknowledged) of every (use case, metric)
    that ever alerted, at most `limit` pairs: 0 once all are acknowledged, so that a
    gauge goes to 0 instead of vanishing."""
    query = sql.SQL(
        "SELECT use_case, metric, count(*) FILTER (WHERE acknowledged_at IS NULL) FROM {} "
        "GROUP BY use_case, metric ORDER BY use_case, metric LIMIT %s"
    ).format(ALERTS)
    with conn.cursor() as cur:
        cur.execute(query, (limit,))
        return [(u, m, int(n)) for u, m, n in cur.fetchall()]


def _columns(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)
