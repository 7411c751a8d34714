"""queue_manager's embedded store: a schema of its own (`queue_manager` unless
QUEUE_MANAGER_SCHEMA says otherwise) in the PostgreSQL `make run` already needs.

Algorithms, services and jobs are tables with the indexes their queries use; model files
are kept once per content, keyed by their SHA-256, in `model_files`. Jobs are never
pruned: (service, message_id) is the primary key, and listing and counting read indexes
on start date and status. A job's payload and result are `json`, not `jsonb`: kept as
sent (jsonb would turn 1e16 into an integer and reorder keys), and cheaper to take in.
Every unit of work is one transaction."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

import orjson
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extras import Json

from gits_common.jobs import JobCreate, JobRecord, JobStatus
from gits_common.postgres import Database
from gits_common.registry import ModelCheck
from queue_manager.schemas import AlgorithmCreate
from queue_manager.store import CHUNK_BYTES, JobKey, Session, StoredAlgorithm, StoredService

T = TypeVar("T")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.model_files (
    sha256 text PRIMARY KEY,
    content bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.algorithms (
    name text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    use_case text NOT NULL,
    task text NOT NULL,
    features jsonb NOT NULL,
    target text,
    description text,
    sha256 text NOT NULL REFERENCES {schema}.model_files (sha256),
    size bigint NOT NULL,
    filename text NOT NULL,
    uploaded_by text NOT NULL,
    uploaded_at timestamptz NOT NULL,
    "check" jsonb,
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS algorithms_use_case ON {schema}.algorithms (use_case);
CREATE TABLE IF NOT EXISTS {schema}.services (
    name text PRIMARY KEY,
    routing_key text NOT NULL,
    use_case text NOT NULL,
    algorithm_name text NOT NULL,
    algorithm_version integer,
    updated_at timestamptz NOT NULL,
    updated_by text,
    model_status jsonb
);
CREATE INDEX IF NOT EXISTS services_algorithm ON {schema}.services (algorithm_name);
CREATE TABLE IF NOT EXISTS {schema}.jobs (
    service text NOT NULL,
    message_id text NOT NULL,
    payload json NOT NULL,
    last_status text NOT NULL,
    result json,
    message text,
    model_version text,
    start_date timestamptz NOT NULL,
    end_date timestamptz,
    time_elapsed_sec double precision,
    routing_key text,
    worker text,
    PRIMARY KEY (service, message_id)
);
CREATE INDEX IF NOT EXISTS jobs_by_start ON {schema}.jobs (start_date DESC);
CREATE INDEX IF NOT EXISTS jobs_by_service ON {schema}.jobs (service, start_date DESC);
CREATE INDEX IF NOT EXISTS jobs_by_status ON {schema}.jobs (last_status, start_date DESC);
-- Jobs per service and status, as changes appended by statement triggers from each
-- statement's changed rows: appending takes no lock another batch waits for (shared
-- counter rows did: concurrent batches deadlocked on them), and counting a million jobs
-- sums a few rows a batch, compacted from time to time (`compact_counts`).
CREATE TABLE IF NOT EXISTS {schema}.job_count_changes (
    service text NOT NULL,
    last_status text NOT NULL,
    jobs bigint NOT NULL
);
-- Jobs stored before the counts existed are counted once, when the table is new.
INSERT INTO {schema}.job_count_changes (service, last_status, jobs)
SELECT service, last_status, count(*) FROM {schema}.jobs
WHERE NOT EXISTS (SELECT 1 FROM {schema}.job_count_changes)
GROUP BY service, last_status;
CREATE INDEX IF NOT EXISTS job_count_changes_by_service
    ON {schema}.job_count_changes (service);
CREATE OR REPLACE FUNCTION {schema}.count_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {schema}.job_count_changes (service, last_status, jobs)
        SELECT service, last_status, count(*) FROM new_jobs GROUP BY service, last_status;
    ELSE
        INSERT INTO {schema}.job_count_changes (service, last_status, jobs)
        SELECT service, last_status, sum(delta) FROM (
            SELECT service, last_status, -1 AS delta FROM old_jobs
            UNION ALL
            SELECT service, last_status, 1 FROM new_jobs
        ) AS changes
        GROUP BY service, last_status HAVING sum(delta) <> 0;
    END IF;
    RETURN NULL;
END $$;
-- Created once: a trigger's DDL locks the jobs table against every writer, so a replica
-- that starts while another records jobs must not run it again.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {jobs_table}::regclass
                   AND tgname = 'jobs_counted_on_insert') THEN
        CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON {schema}.jobs
            REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT
            EXECUTE FUNCTION {schema}.count_jobs();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {jobs_table}::regclass
                   AND tgname = 'jobs_counted_on_update') THEN
        CREATE TRIGGER jobs_counted_on_update AFTER UPDATE ON {schema}.jobs
            REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT
            EXECUTE FUNCTION {schema}.count_jobs();
    END IF;
END $$;
"""

ALGORITHM_COLUMNS = (
    "name, version, use_case, task, features, target, description, sha256, size, filename, "
    'uploaded_by, uploaded_at, "check"'
)
SERVICE_COLUMNS = (
    "name, routing_key, use_case, algorithm_name, algorithm_version, updated_at, updated_by, "
    "model_status"
)
JOB_COLUMNS = (
    "service, message_id, payload, last_status, result, message, model_version, start_date, "
    "end_date, time_elapsed_sec, routing_key, worker"
)
# Job fields an update may set, by the name the service uses for them.
JOB_FIELDS = {
    "last_status": "last_status",
    "result": "result",
    "message": "message",
    "model_version": "model_version",
    "metadata.end_date": "end_date",
    "metadata.time_elapsed_sec": "time_elapsed_sec",
}
JSON_FIELDS = frozenset({"result"})
# Rows of a batch in key order: concurrent batches lock the jobs they share in the same
# order, so that they wait for each other instead of deadlocking.
IN_KEY_ORDER = "ORDER BY service, message_id"
# Units of work between two compactions of the job counts.
COMPACT_EVERY = 500
# The positions of the JSON columns in JOB_COLUMNS (payload, result).
JSON_COLUMNS = frozenset({2, 4})
# The temporary table a transaction COPYs a batch of jobs into before upserting them.
BATCH_TABLE = "queue_manager_job_batch"


@dataclass
class AlgorithmRow:
    """A row of `algorithms` (see store.StoredAlgorithm)."""

    name: str
    version: int
    use_case: str
    task: str
    features: list[str]
    target: str | None
    description: str | None
    sha256: str
    size: int
    filename: str
    uploaded_by: str
    uploaded_at: datetime
    check: dict[str, Any] | None


@dataclass
class ServiceRow:
    """A row of `services` (see store.StoredService)."""

    name: str
    routing_key: str
    use_case: str
    algorithm_name: str
    algorithm_version: int | None
    updated_at: datetime
    updated_by: str | None
    model_status: dict[str, Any] | None


class PostgresStore:
    """queue_manager's tables in a schema of a PostgreSQL database."""

    description = "postgresql"

    def __init__(self, db: Database, *, schema: str) -> None:
        self.db = db
        self.schema = schema
        self._ready = False
        self._units = 0  # units of work since the counts were last compacted

    def prepare(self) -> None:
        """Create the schema and its tables when missing (idempotent)."""
        ddl = sql.SQL(SCHEMA_SQL).format(
            schema=sql.Identifier(self.schema),
            jobs_table=sql.Literal(f'"{self.schema}".jobs'),
        )

        def create(conn: Connection) -> None:
            with conn.cursor() as cur:
                # One creator at a time: CREATE ... IF NOT EXISTS races on the catalog.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
                cur.execute(ddl)

        self.db.run(create)
        self._ready = True

    def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction; `Unavailable` when PostgreSQL is out of
        reach (the tables are created first if this is the first unit of work)."""
        if not self._ready:
            self.prepare()
        result = self.db.run(lambda conn: work(PostgresSession(conn, self.schema)))
        self._units += 1
        if self._units >= COMPACT_EVERY:
            self._units = 0
            self.compact_counts()
        return result

    def compact_counts(self) -> None:
        """Sum the job count changes into one row per (service, status), in one
        statement (changes appended meanwhile by other transactions are not visible to
        it, so they are kept), and refresh the jobs table's statistics: after a bulk of
        new jobs, stale ones make PostgreSQL scan the whole table to count a recent time
        range (146 ms at a million jobs, against a few with an index). One at a time,
        the others skip."""

        def compact(conn: Connection) -> None:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (f"counts:{self.schema}",)
                )
                locked = cur.fetchone()
                if not (locked and locked[0]):
                    return
                cur.execute(
                    sql.SQL(
                        "WITH gone AS (DELETE FROM {s}.job_count_changes "
                        "RETURNING service, last_status, jobs) "
                        "INSERT INTO {s}.job_count_changes (service, last_status, jobs) "
                        "SELECT service, last_status, sum(jobs) FROM gone "
                        "GROUP BY service, last_status HAVING sum(jobs) <> 0"
                    ).format(s=sql.Identifier(self.schema))
                )
                cur.execute(sql.SQL("ANALYZE {s}.jobs").format(s=sql.Identifier(self.schema)))

        self.db.run(compact)

    def ping(self) -> None:
        """Raise `Unavailable` unless PostgreSQL answers and the tables exist."""
        self.db.ping()
        if not self._ready:
            self.prepare()

    def close(self) -> None:
        """Close every pooled connection."""
        self.db.close()


class PostgresSession:
    """The store's queries on one connection, inside its transaction."""

    def __init__(self, conn: Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def _sql(self, text: str) -> sql.Composed:
        """A statement with `{s}` standing for the schema."""
        return sql.SQL(text).format(s=sql.Identifier(self.schema))

    def _rows(self, text: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(self._sql(text), args)
            return list(cur.fetchall()) if cur.description else []

    # --- Algorithms ---

    def insert_algorithm(
        self,
        *,
        fields: AlgorithmCreate,
        content: BinaryIO,
        sha256: str,
        size: int,
        check: ModelCheck,
        now: datetime,
    ) -> AlgorithmRow:
        """Store a model file as the next version of its name; uploads of one name are
        numbered one at a time (a transaction lock on the name)."""
        self.lock_algorithm(name=fields.name)
        version = max(self.latest_versions(names=[fields.name]).values(), default=0) + 1
        content.seek(0)
        self._rows(
            "INSERT INTO {s}.model_files (sha256, content) VALUES (%s, %s) "
            "ON CONFLICT (sha256) DO NOTHING",
            (sha256, content.read()),
        )
        row = AlgorithmRow(
            name=fields.name,
            version=version,
            use_case=fields.use_case,
            task=fields.task.value,
            features=list(check.features),
            target=fields.target,
            description=fields.description,
            sha256=sha256,
            size=size,
            filename=f"{fields.name}-v{version}.pkl",
            uploaded_by=fields.uploaded_by,
            uploaded_at=now,
            check=check.model_dump(mode="json"),
        )
        self._rows(
            f"INSERT INTO {{s}}.algorithms ({ALGORITHM_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                row.name,
                row.version,
                row.use_case,
                row.task,
                Json(row.features),
                row.target,
                row.description,
                row.sha256,
                row.size,
                row.filename,
                row.uploaded_by,
                row.uploaded_at,
                None if row.check is None else Json(row.check),
            ),
        )
        return row

    def lock_algorithm(self, *, name: str) -> None:
        """A transaction lock on the algorithm name (released at commit)."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}:algorithm:{name}",)
            )

    def find_algorithm(self, *, name: str, version: int | None) -> AlgorithmRow | None:
        """One version of an algorithm (the latest when `version` is None), or None."""
        if version is None:
            found = self._rows(
                f"SELECT {ALGORITHM_COLUMNS} FROM {{s}}.algorithms WHERE name = %s "
                "ORDER BY version DESC LIMIT 1",
                (name,),
            )
        else:
            found = self._rows(
                f"SELECT {ALGORITHM_COLUMNS} FROM {{s}}.algorithms "
                "WHERE name = %s AND version = %s",
                (name, version),
            )
        return AlgorithmRow(*found[0]) if found else None

    def list_algorithms(
        self, *, names: Iterable[str] | None = None, use_case: str | None = None
    ) -> list[StoredAlgorithm]:
        """Stored versions, newest first, optionally of some names or one use case."""
        found = self._rows(
            f"SELECT {ALGORITHM_COLUMNS} FROM {{s}}.algorithms "
            "WHERE (%s OR name = ANY(%s)) AND (%s OR use_case = %s) "
            "ORDER BY uploaded_at DESC, version DESC",
            (names is None, list(names or ()), use_case is None, use_case),
        )
        return [AlgorithmRow(*row) for row in found]

    def latest_versions(self, *, names: Iterable[str]) -> dict[str, int]:
        """The highest version of each named algorithm that has one."""
        found = self._rows(
            "SELECT name, max(version) FROM {s}.algorithms WHERE name = ANY(%s) GROUP BY name",
            (list(names),),
        )
        return {name: int(version) for name, version in found}

    def read_algorithm_file(self, *, algorithm: StoredAlgorithm) -> Iterator[bytes] | None:
        """The stored bytes of a model file in chunks (read now, whole: the connection
        goes back to the pool when the unit of work ends); None when the file is gone."""
        found = self._rows(
            "SELECT content FROM {s}.model_files WHERE sha256 = %s", (algorithm.sha256,)
        )
        if not found:
            return None
        content = bytes(found[0][0])
        return iter([content[i : i + CHUNK_BYTES] for i in range(0, len(content), CHUNK_BYTES)])

    def delete_algorithm(self, *, algorithm: StoredAlgorithm) -> None:
        """Delete one version, and its file when no other version has the same bytes."""
        self._rows(
            "DELETE FROM {s}.algorithms WHERE name = %s AND version = %s",
            (algorithm.name, algorithm.version),
        )
        self._rows(
            "DELETE FROM {s}.model_files f WHERE sha256 = %s AND NOT EXISTS "
            "(SELECT 1 FROM {s}.algorithms a WHERE a.sha256 = f.sha256)",
            (algorithm.sha256,),
        )

    # --- Services ---

    def save_service(
        self,
        *,
        name: str,
        routing_key: str,
        use_case: str,
        algorithm_name: str,
        algorithm_version: int | None,
        updated_by: str | None,
        now: datetime,
    ) -> tuple[ServiceRow, bool]:
        """Create or rebind a service; (service, created)."""
        found = self._rows(
            f"INSERT INTO {{s}}.services ({SERVICE_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, NULL) "
            "ON CONFLICT (name) DO UPDATE SET routing_key = EXCLUDED.routing_key, "
            "use_case = EXCLUDED.use_case, algorithm_name = EXCLUDED.algorithm_name, "
            "algorithm_version = EXCLUDED.algorithm_version, "
            "updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by, "
            "model_status = NULL "
            "RETURNING (xmax = 0)",
            (name, routing_key, use_case, algorithm_name, algorithm_version, now, updated_by),
        )
        row = ServiceRow(
            name, routing_key, use_case, algorithm_name, algorithm_version, now, updated_by, None
        )
        return row, bool(found[0][0])

    def set_model_status(self, *, name: str, status: dict[str, Any]) -> None:
        """Keep the workers' newest report on a service's model."""
        self._rows(
            "UPDATE {s}.services SET model_status = %s WHERE name = %s",
            (Json(status, dumps=_dumps), name),
        )

    def find_service(self, *, name: str) -> StoredService | None:
        """One service, or None."""
        found = self.list_services(name=name)
        return found[0] if found else None

    def list_services(
        self, *, name: str | None = None, algorithm_names: Iterable[str] | None = None
    ) -> list[StoredService]:
        """Services by name, optionally only one name or those bound to some algorithms."""
        found = self._rows(
            f"SELECT {SERVICE_COLUMNS} FROM {{s}}.services "
            "WHERE (%s OR name = %s) AND (%s OR algorithm_name = ANY(%s)) ORDER BY name",
            (name is None, name, algorithm_names is None, list(algorithm_names or ())),
        )
        return [ServiceRow(*row) for row in found]

    def delete_service(self, *, name: str) -> bool:
        """Delete a service; False when there was none."""
        return bool(self._rows("DELETE FROM {s}.services WHERE name = %s RETURNING 1", (name,)))

    # --- Jobs ---

    def insert_jobs(self, *, jobs: Sequence[JobCreate], now: datetime) -> set[JobKey]:
        """Create the jobs whose key is new in one statement; the keys created."""
        self._copy_batch([_job_row(j, now) for j in jobs])
        created = self._rows(
            f"INSERT INTO {{s}}.jobs ({JOB_COLUMNS}) SELECT {JOB_COLUMNS} FROM {BATCH_TABLE} "
            f"{IN_KEY_ORDER} ON CONFLICT (service, message_id) DO NOTHING "
            "RETURNING service, message_id"
        )
        return {(service, message_id) for service, message_id in created}

    def record_jobs(self, *, jobs: Sequence[JobRecord], now: datetime) -> int:
        """Write jobs in their final state in one statement (the rule of
        `Session.record_jobs`; within a batch, the last record of a key)."""
        rows = {(j.service, j.message_id): _job_row(j, now) for j in jobs}
        self._copy_batch(list(rows.values()))
        self._rows(
            f"INSERT INTO {{s}}.jobs AS j ({JOB_COLUMNS}) SELECT {JOB_COLUMNS} "
            f"FROM {BATCH_TABLE} {IN_KEY_ORDER} "
            "ON CONFLICT (service, message_id) DO UPDATE SET "
            "payload = CASE WHEN EXCLUDED.last_status = 'finished' "
            "THEN EXCLUDED.payload ELSE j.payload END, "
            "last_status = EXCLUDED.last_status, result = EXCLUDED.result, "
            "message = EXCLUDED.message, model_version = EXCLUDED.model_version, "
            "end_date = EXCLUDED.end_date, "
            # from the stored start, which a job written before keeps
            "time_elapsed_sec = greatest(extract(epoch FROM EXCLUDED.end_date - j.start_date), 0) "
            "WHERE j.last_status <> 'finished'"
        )
        return len(rows)

    def _copy_batch(self, rows: list[tuple[Any, ...]]) -> None:
        """COPY job rows (in JOB_COLUMNS' order; payload and result as JSON values) into
        this transaction's batch table, emptied at commit. COPY takes rows about ten times
        faster than INSERT ... VALUES built by the client."""
        self._rows(
            f"CREATE TEMP TABLE IF NOT EXISTS {BATCH_TABLE} (LIKE {{s}}.jobs) ON COMMIT DELETE ROWS"
        )
        self._rows(f"TRUNCATE {BATCH_TABLE}")
        lines = bytearray()
        for row in rows:
            fields = [_copy_field(v, json=i in JSON_COLUMNS) for i, v in enumerate(row)]
            lines += b"\t".join(fields) + b"\n"
        with self.conn.cursor() as cur:
            cur.copy_expert(
                f"COPY {BATCH_TABLE} ({JOB_COLUMNS}) FROM STDIN", io.BytesIO(bytes(lines))
            )

    def find_jobs(self, *, keys: Iterable[JobKey]) -> dict[JobKey, dict[str, Any]]:
        """Stored jobs by (service, message_id); keys not stored are left out."""
        wanted = list(keys)
        found = self._rows(
            f"SELECT {JOB_COLUMNS} FROM {{s}}.jobs "
            "WHERE (service, message_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([s for s, _ in wanted], [m for _, m in wanted]),
        )
        jobs = [_job(row) for row in found]
        return {(job["service"], job["message_id"]): job for job in jobs}

    def update_jobs(self, *, changes: Mapping[JobKey, dict[str, Any]]) -> None:
        """Set fields of jobs by key, one statement a job, in key order (so that
        concurrent batches lock their jobs in the same order)."""
        for (service, message_id), fields in sorted(changes.items()):
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = %s").format(sql.Identifier(JOB_FIELDS[name])) for name in fields
            )
            values = [
                Json(value, dumps=_dumps) if name in JSON_FIELDS else value
                for name, value in fields.items()
            ]
            with self.conn.cursor() as cur:
                cur.execute(
                    sql.SQL(
                        "UPDATE {s}.jobs SET {a} WHERE service = %s AND message_id = %s"
                    ).format(s=sql.Identifier(self.schema), a=assignments),
                    [*values, service, message_id],
                )

    def list_jobs(
        self,
        *,
        status: JobStatus | None,
        service: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Jobs newest first by start date: `since` inclusive, `until` exclusive."""
        where, args = _job_filter(status=status, service=service, since=since, until=until)
        found = self._rows(
            f"SELECT {JOB_COLUMNS} FROM {{s}}.jobs {where} "
            "ORDER BY start_date DESC, service DESC, message_id DESC LIMIT %s",
            [*args, limit],
        )
        return [_job(row) for row in found]

    def count_jobs(self, *, service: str | None, since: datetime | None) -> dict[str, int]:
        """Jobs per status, of one service and started since a time when given."""
        if since is not None:  # a time range: the start-date indexes narrow the rows
            where, args = _job_filter(status=None, service=service, since=since, until=None)
            found = self._rows(
                f"SELECT last_status, count(*) FROM {{s}}.jobs {where} GROUP BY last_status",
                args,
            )
        else:
            found = self._rows(
                "SELECT last_status, sum(jobs) FROM {s}.job_count_changes "
                "WHERE (%s OR service = %s) GROUP BY last_status",
                (service is None, service),
            )
        return {status: int(count) for status, count in found if count}


def _job_filter(
    *,
    status: JobStatus | None,
    service: str | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, list[Any]]:
    """A WHERE clause (no user text in it) and its arguments."""
    clauses, args = [], []
    for clause, value in (
        ("last_status = %s", None if status is None else status.value),
        ("service = %s", service),
        ("start_date >= %s", since),
        ("start_date < %s", until),
    ):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def _job(row: tuple[Any, ...]) -> dict[str, Any]:
    """A jobs row in the job document's shape."""
    (
        service,
        message_id,
        payload,
        last_status,
        result,
        message,
        model_version,
        start_date,
        end_date,
        elapsed,
        routing_key,
        worker,
    ) = row
    return {
        "message_id": message_id,
        "service": service,
        "payload": payload,
        "last_status": last_status,
        "result": result,
        "message": message,
        "model_version": model_version,
        "metadata": {
            "start_date": start_date,
            "end_date": end_date,
            "time_elapsed_sec": elapsed,
            "routing_key": routing_key,
            "worker": worker,
        },
    }


def _copy_field(value: Any, *, json: bool) -> bytes:
    """One field of a COPY text row: NULL as \\N; JSON (for a json column) or the value's text,
    with backslash, tab, newline and carriage return escaped (PostgreSQL docs, COPY,
    "Text Format")."""
    if value is None:
        return b"\\N"
    if json:
        text = _dumps(value).encode()
    elif isinstance(value, datetime):
        text = value.isoformat().encode()
    else:
        text = str(value).encode()
    return (
        text.replace(b"\\", b"\\\\")
        .replace(b"\t", b"\\t")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
    )


def _job_row(job: JobCreate | JobRecord, now: datetime) -> tuple[Any, ...]:
    """A job's row in JOB_COLUMNS' order: a new job (JobCreate) has no result, end or
    elapsed time yet; a final one (JobRecord) ends now unless it says when."""
    start = job.start_date or now
    if not isinstance(job, JobRecord):
        return (
            job.service,
            job.message_id,
            job.payload,
            job.last_status.value,
            None,
            None,
            None,
            start,
            None,
            None,
            job.routing_key,
            job.worker,
        )
    end = job.end_date or now
    return (
        job.service,
        job.message_id,
        job.payload,
        job.last_status.value,
        job.result,
        job.message,
        job.model_version,
        start,
        end,
        max((end - start).total_seconds(), 0.0),
        job.routing_key,
        job.worker,
    )


def _dumps(value: Any) -> str:
    """JSON text for a json column (orjson, as COPY's rows: datetimes as RFC 3339)."""
    return orjson.dumps(value).decode()
