"""Every query ml_data_api runs. Functions take a connection and keyword arguments;
identifiers always go through psycopg2.sql, values always as parameters."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extras import Json, execute_values

from gits_common.schemas import ColumnType, Table, UseCase
from ml_data_api.tables import Field, fields, table_name

log = logging.getLogger(__name__)

SQL_TYPES = {
    ColumnType.float: "double precision",
    ColumnType.int: "bigint",
    ColumnType.bool: "boolean",
    ColumnType.text: "text",
    "time": "timestamptz",
    "message_id": "text",
}
# Below this many rows one INSERT statement is quicker than staging through COPY.
COPY_THRESHOLD = 500
SCHEMA_LOCK = 0x6A175  # pg_advisory_xact_lock key serialising DDL between processes


def ensure_schema(*, conn: Connection) -> bool:
    """Create the use-case registry if missing; True when TimescaleDB is available."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        cur.execute(
            """CREATE TABLE IF NOT EXISTS gits_use_cases (
                   name text PRIMARY KEY,
                   definition jsonb NOT NULL,
                   storage text NOT NULL,
                   created_at timestamptz NOT NULL DEFAULT now())"""
        )
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
        (found,) = cur.fetchone() or (False,)
        return bool(found)


def select_use_case(*, conn: Connection, name: str) -> tuple[UseCase, str] | None:
    """A registered use case and its storage kind, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT definition, storage FROM gits_use_cases WHERE name = %s", (name,))
        row = cur.fetchone()
    return None if row is None else (UseCase.model_validate(row[0]), row[1])


def select_use_cases(*, conn: Connection) -> list[tuple[UseCase, str]]:
    """Every registered use case, by name."""
    with conn.cursor() as cur:
        cur.execute("SELECT definition, storage FROM gits_use_cases ORDER BY name")
        return [(UseCase.model_validate(d), s) for d, s in cur.fetchall()]


def create_use_case(*, conn: Connection, use_case: UseCase, hypertables: bool) -> str:
    """Register a use case and create its three tables; returns the storage kind."""
    storage = "hypertable" if hypertables else "table"
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for table in Table:
            _create_table(cur, use_case, table, hypertables)
        cur.execute(
            "INSERT INTO gits_use_cases (name, definition, storage) VALUES (%s, %s, %s)",
            (use_case.name, Json(use_case.model_dump(mode="json")), storage),
        )
    return storage


def _create_table(cur: Any, use_case: UseCase, table: Table, hypertable: bool) -> None:
    name = table_name(use_case.name, table)
    columns: list[sql.Composable] = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(f.name),
            sql.SQL(SQL_TYPES[f.kind]),
            sql.SQL(" NOT NULL" if f.required else ""),
        )
        for f in fields(use_case, table)
    ]
    columns.append(sql.SQL("inserted_at timestamptz NOT NULL DEFAULT now()"))
    time_col = sql.Identifier(use_case.time_column)
    cur.execute(
        sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), sql.SQL(", ").join(columns))
    )
    if hypertable:
        cur.execute("SELECT create_hypertable(%s, %s)", (name, use_case.time_column))
    else:
        cur.execute(
            sql.SQL("CREATE INDEX {} ON {} ({} DESC)").format(
                sql.Identifier(f"{name}_time_idx"), sql.Identifier(name), time_col
            )
        )
    # TimescaleDB wants the time column in every unique index; plain tables need not.
    unique = [sql.Identifier("message_id"), *([time_col] if hypertable else [])]
    cur.execute(
        sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
            sql.Identifier(f"{name}_message_id_key"),
            sql.Identifier(name),
            sql.SQL(", ").join(unique),
        )
    )


def insert_rows(
    *, conn: Connection, use_case: UseCase, table: Table, rows: Sequence[dict[str, Any]]
) -> list[str | None]:
    """Insert validated rows in one transaction; rows whose message_id is already
    stored are skipped. Returns the message_id of every row that was new (None for new
    rows without one)."""
    cols = fields(use_case, table)
    target = sql.Identifier(table_name(use_case.name, table))
    names = sql.SQL(", ").join(sql.Identifier(f.name) for f in cols)
    with conn.cursor() as cur:
        if len(rows) < COPY_THRESHOLD:
            values = [_parameters(row, cols) for row in rows]
            query = sql.SQL(
                "INSERT INTO {} ({}) VALUES %s ON CONFLICT DO NOTHING RETURNING message_id"
            ).format(target, names)
            template = _typed_template(cols)
            new = execute_values(
                cur,
                query.as_string(conn),
                values,
                template=template,
                page_size=len(values),
                fetch=True,
            )
            return [row[0] for row in new]
        staging = sql.Identifier("gits_incoming")
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                staging, target
            )
        )
        copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(staging, names)
        cur.copy_expert(copy.as_string(conn), _csv(rows, cols))
        cur.execute(
            sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING RETURNING message_id"
            ).format(target, names, names, staging)
        )
        return [row[0] for row in cur.fetchall()]


def _typed_template(cols: Sequence[Field]) -> str:
    """An execute_values row template casting each value to its column's type, so a
    VALUES list has the table's types (see `_parameters` for floats)."""
    casts = ", ".join(f"(%s)::{SQL_TYPES[f.kind]}" for f in cols)
    return f"({casts})"


def _parameters(row: dict[str, Any], cols: Sequence[Field]) -> tuple[Any, ...]:
    """A row's values as query parameters. Floats go as their shortest repr text:
    psycopg2 writes them as bare literals, and PostgreSQL reads `-0.0` as minus the
    numeric 0, which is 0, where the text '-0.0' is the double -0."""
    return tuple(
        repr(value) if isinstance(value, float) else value
        for value in (row.get(f.name) for f in cols)
    )


def _csv(rows: Sequence[dict[str, Any]], cols: list[Field]) -> io.StringIO:
    """Rows as CSV for COPY: an unquoted empty field is NULL, every text is quoted."""
    lines = [",".join(_csv_value(row.get(f.name)) for f in cols) for row in rows]
    return io.StringIO("\n".join(lines) + "\n")


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


@dataclass(frozen=True)
class RowQuery:
    """Which rows a read wants: the `last` newest, or those in [start, end); with or
    without a target value when `labelled` says so; at most `limit`."""

    start: datetime | None = None
    end: datetime | None = None
    last: int | None = None
    labelled: bool | None = None
    limit: int = 10_000


def select_rows(
    *, conn: Connection, use_case: UseCase, table: Table, query: RowQuery
) -> list[dict[str, Any]]:
    """The rows a query asks for, in ascending time order."""
    names = [f.name for f in fields(use_case, table)]
    time_col = sql.Identifier(use_case.time_column)
    conditions, params = [], []
    if query.start is not None:
        conditions.append(sql.SQL("{} >= %s").format(time_col))
        params.append(query.start)
    if query.end is not None:
        conditions.append(sql.SQL("{} < %s").format(time_col))
        params.append(query.end)
    if query.labelled is not None and use_case.target is not None:
        test = "IS NOT NULL" if query.labelled else "IS NULL"
        conditions.append(sql.SQL("{} " + test).format(sql.Identifier(use_case.target.name)))
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    newest_first = query.last is not None
    statement = sql.SQL("SELECT {} FROM {}{} ORDER BY {} {} LIMIT %s").format(
        sql.SQL(", ").join(sql.Identifier(n) for n in names),
        sql.Identifier(table_name(use_case.name, table)),
        where,
        time_col,
        sql.SQL("DESC" if newest_first else "ASC"),
    )
    limit = min(query.last, query.limit) if query.last is not None else query.limit
    with conn.cursor() as cur:
        cur.execute(statement, [*params, limit])
        rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    return rows[::-1] if newest_first else rows


def attach_labels(
    *, conn: Connection, use_case: UseCase, labels: Sequence[dict[str, Any]]
) -> tuple[set[str], int]:
    """Set the target of the production rows these labels name, and copy those rows,
    labelled, into the training table (once: a row already there is left as it is).
    Returns the message ids found in production and how many training rows were new."""
    assert use_case.target is not None
    target = sql.Identifier(use_case.target.name)
    production = sql.Identifier(table_name(use_case.name, Table.production))
    with conn.cursor() as cur:
        update = sql.SQL(
            "UPDATE {p} SET {t} = v.value FROM (VALUES %s) AS v(message_id, value) "
            "WHERE {p}.message_id = v.message_id RETURNING {p}.message_id"
        ).format(p=production, t=target)
        cols = [Field("message_id", "message_id", True), Field("value", use_case.target.type, True)]
        values = [_parameters(label, cols) for label in labels]
        template = _typed_template(cols)
        found = execute_values(
            cur,
            update.as_string(conn),
            values,
            template=template,
            page_size=len(values),
            fetch=True,
        )
        labelled = {row[0] for row in found}
        columns = sql.SQL(", ").join(
            sql.Identifier(f.name) for f in fields(use_case, Table.training)
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {} ({c}) SELECT {c} FROM {} WHERE message_id = ANY(%s) "
                "ON CONFLICT DO NOTHING"
            ).format(
                sql.Identifier(table_name(use_case.name, Table.training)), production, c=columns
            ),
            (list(labelled),),
        )
        return labelled, int(cur.rowcount)


def count_rows(*, conn: Connection, use_case: UseCase) -> dict[str, int]:
    """How many rows each of the use case's tables holds."""
    counts = sql.SQL(", ").join(
        sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(table_name(use_case.name, t)))
        for t in Table
    )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT {}").format(counts))
        found = cur.fetchone() or ()
        return dict(zip([t.value for t in Table], found, strict=True))


def delete_rows(
    *, conn: Connection, use_case: UseCase, table: Table, start: datetime, end: datetime
) -> int:
    """Delete the rows whose time falls in [start, end); returns how many."""
    query = sql.SQL("DELETE FROM {} WHERE {} >= %s AND {} < %s").format(
        sql.Identifier(table_name(use_case.name, table)),
        sql.Identifier(use_case.time_column),
        sql.Identifier(use_case.time_column),
    )
    with conn.cursor() as cur:
        cur.execute(query, (start, end))
        return int(cur.rowcount)


def drop_use_case(*, conn: Connection, name: str) -> list[str] | None:
    """Drop a use case's three tables and its registry entry in one transaction; the
    names of the tables dropped, or None when no use case has that name. Raises
    psycopg2.errors.DependentObjectsStillExist when a view or foreign key of someone
    else's depends on a table (nothing is dropped then: CASCADE would drop theirs)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        cur.execute("DELETE FROM gits_use_cases WHERE name = %s RETURNING name", (name,))
        if cur.fetchone() is None:
            return None
        dropped = [table_name(name, table) for table in Table]
        for table in dropped:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        return dropped
