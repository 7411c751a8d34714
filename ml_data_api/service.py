"""What ml_data_api does, apart from HTTP: use cases, inserts, reads, deletes."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from typing import Any

from psycopg2 import errors as pg_errors

from gits_common import errors
from gits_common.clients import QueueManagerClient
from gits_common.postgres import Database
from gits_common.rules import printable
from gits_common.schemas import Table, UseCase
from gits_common.values import Kind, Records, records_validator
from ml_data_api import store
from ml_data_api.rows import MAX_REPORTED_ERRORS, row_validator, validate_rows
from ml_data_api.schemas import InsertResult, LabelResult, UseCaseDeleted, UseCaseRead
from ml_data_api.tables import fields, table_name

log = logging.getLogger(__name__)


class MlData:
    """The use-case catalog and its tables. Use cases never change once registered, so
    their definitions and row validators are cached for the life of the process."""

    def __init__(
        self, db: Database, *, max_batch_rows: int, queue_manager: QueueManagerClient
    ) -> None:
        self.db = db
        self.queue_manager = queue_manager
        self.max_batch_rows = max_batch_rows
        self.timescaledb: bool | None = None
        self._use_cases: dict[str, UseCaseRead] = {}
        self._validators: dict[tuple[str, str], Records] = {}
        self._lock = threading.Lock()

    def prepare(self) -> bool:
        """Create the registry if needed and learn whether TimescaleDB is there."""
        if self.timescaledb is None:
            self.timescaledb = self.db.run(lambda conn: store.ensure_schema(conn=conn))
            if self.timescaledb:
                log.info("TimescaleDB found: use-case tables are hypertables")
            else:
                log.info(
                    "TimescaleDB not installed: use-case tables are plain PostgreSQL "
                    "tables with a time index"
                )
        return self.timescaledb

    def register(self, use_case: UseCase) -> tuple[UseCaseRead, bool]:
        """Register a use case and create its tables; (record, created). Registering the
        same definition again is a no-op; a different one under a taken name conflicts."""
        hypertables = self.prepare()

        def create(conn: Any) -> tuple[UseCaseRead, bool]:
            found = store.select_use_case(conn=conn, name=use_case.name)
            if found is not None:
                return _read(*found), False
            storage = store.create_use_case(conn=conn, use_case=use_case, hypertables=hypertables)
            return _read(use_case, storage), True

        record, created = self.db.run(create)
        if record.use_case != use_case:
            raise errors.Conflict(
                f"use case {use_case.name!r} exists with a different definition; "
                "register the new one under another name"
            )
        if created:
            log.info("registered use case %s (%s storage)", use_case.name, record.storage)
        return record, created

    def get(self, name: str) -> UseCaseRead:
        """A registered use case, or `NotFound`."""
        if name not in self._use_cases:
            self.prepare()
            found = self.db.run(lambda conn: store.select_use_case(conn=conn, name=name))
            if found is None:
                raise errors.NotFound(f"unknown use case {name!r}")
            self._use_cases[name] = _read(*found)
        return self._use_cases[name]

    def use_cases(self) -> list[UseCaseRead]:
        """Every registered use case."""
        self.prepare()
        return [_read(*found) for found in self.db.run(lambda c: store.select_use_cases(conn=c))]

    def insert(self, name: str, table: Table, rows: list[dict[str, Any]]) -> InsertResult:
        """Validate every row, then insert all of them in one transaction."""
        use_case = self.get(name).use_case
        if not rows:
            raise errors.InvalidInput("empty batch: send at least one row")
        if len(rows) > self.max_batch_rows:
            raise errors.TooLarge(
                f"batch of {len(rows)} rows is over the limit of {self.max_batch_rows}; "
                "split it into smaller requests"
            )
        valid = validate_rows(self._validator(use_case, table), rows)
        new = self.db.run(
            lambda conn: store.insert_rows(conn=conn, use_case=use_case, table=table, rows=valid)
        )
        fresh = set(new)
        skipped = [
            r["message_id"] for r in valid if r.get("message_id") and r["message_id"] not in fresh
        ]
        return InsertResult(inserted=len(new), skipped=len(valid) - len(new), skipped_ids=skipped)

    def _validator(self, use_case: UseCase, table: Table) -> Records:
        key = (use_case.name, table)
        with self._lock:
            if key not in self._validators:
                self._validators[key] = row_validator(use_case, table)
            return self._validators[key]

    def read(self, name: str, table: Table, query: store.RowQuery) -> list[dict[str, Any]]:
        """Rows in ascending time order, timestamps as ISO 8601 strings."""
        use_case = self.get(name).use_case
        _check_window(query.start, query.end)
        rows = self.db.run(
            lambda conn: store.select_rows(conn=conn, use_case=use_case, table=table, query=query)
        )
        time_col = use_case.time_column
        for row in rows:
            row[time_col] = row[time_col].isoformat()
        return rows

    def label(self, name: str, labels: list[dict[str, Any]]) -> LabelResult:
        """Attach true labels to production rows by message id, and add those rows to
        the training table. Labelling again changes nothing."""
        use_case = self.get(name).use_case
        if use_case.target is None:
            raise errors.InvalidInput(f"use case {name!r} has no target to label")
        if not labels:
            raise errors.InvalidInput("empty batch: send at least one label")
        if len(labels) > self.max_batch_rows:
            raise errors.TooLarge(
                f"batch of {len(labels)} labels is over the limit of {self.max_batch_rows}"
            )
        valid = validate_rows(self._label_validator(use_case), labels)
        _refuse_conflicting_labels(valid)
        found, added = self.db.run(
            lambda conn: store.attach_labels(conn=conn, use_case=use_case, labels=valid)
        )
        unknown = sorted({label["message_id"] for label in valid} - found)
        return LabelResult(labelled=len(found), added_to_training=added, unknown=unknown[:100])

    def _label_validator(self, use_case: UseCase) -> Records:
        key = (use_case.name, "labels")
        with self._lock:
            if key not in self._validators:
                assert use_case.target is not None
                columns: list[tuple[str, Kind, bool]] = [
                    ("message_id", "message_id", True),
                    ("value", use_case.target.type, True),
                ]
                self._validators[key] = records_validator(f"{use_case.name}_label", columns)
            return self._validators[key]

    def counts(self, name: str) -> dict[str, int]:
        """Rows per table of a use case."""
        use_case = self.get(name).use_case
        return self.db.run(lambda conn: store.count_rows(conn=conn, use_case=use_case))

    def delete(self, name: str, table: Table, *, start: datetime, end: datetime) -> int:
        """Delete the rows of one table whose time is in [start, end)."""
        use_case = self.get(name).use_case
        _check_window(start, end)
        return self.db.run(
            lambda conn: store.delete_rows(
                conn=conn, use_case=use_case, table=table, start=start, end=end
            )
        )

    async def delete_use_case(self, name: str) -> UseCaseDeleted:
        """Drop a use case's tables, all their rows, and its registry entry, once
        queue_manager says no service uses it; nothing of other use cases is touched.

        Raises `NotFound` for an unknown name; `Conflict` naming the services that use
        it, or the database objects of someone else's that depend on its tables;
        `Unavailable` when queue_manager cannot be asked (it never deletes blind)."""
        await asyncio.to_thread(self.get, name)
        users = await self._services_using(name)
        if users:
            raise errors.Conflict(
                f"use case {name!r} is used by service(s) {', '.join(users)}; delete them "
                "with DELETE /queue_manager/services/<service> first"
            )
        tables = await asyncio.to_thread(self._drop, name)
        log.info("deleted use case %s and its tables %s", name, ", ".join(tables))
        return UseCaseDeleted(name=name, tables=tables)

    async def _services_using(self, name: str) -> list[str]:
        try:
            services = await self.queue_manager.services()
        except errors.Unavailable as exc:
            raise errors.Unavailable(
                f"use case {name!r} was not deleted: queue_manager could not say whether a "
                f"service uses it ({exc.detail}); try again once it is up"
            ) from exc
        return sorted(s.name for s in services if s.use_case == name)

    def _drop(self, name: str) -> list[str]:
        try:
            tables = self.db.run(lambda conn: store.drop_use_case(conn=conn, name=name))
        except pg_errors.DependentObjectsStillExist as exc:
            raise errors.Conflict(
                f"use case {name!r} was not deleted: {str(exc).strip().splitlines()[0]}; "
                "drop what depends on its tables first"
            ) from exc
        finally:
            # Whatever happened, the next request reads the registry again.
            with self._lock:
                self._use_cases.pop(name, None)
                for key in [k for k in self._validators if k[0] == name]:
                    del self._validators[key]
        if tables is None:
            raise errors.NotFound(f"unknown use case {name!r}")
        return tables

    def rename_legacy(self, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The original GITS wrote lower-case column names; map keys onto the use case's
        columns ignoring case, leaving unknown keys for validation to report. Raises
        `InvalidInput` naming the row and both keys when two keys of a row differ only
        by case: one of their values would otherwise be dropped unseen."""
        use_case = self.get(name).use_case
        known = {f.name.lower(): f.name for f in fields(use_case, Table.production)}
        renamed, found = [], []
        for index, row in enumerate(rows):
            out: dict[str, Any] = {}
            sent: dict[str, str] = {}
            for key, value in row.items():
                column = known.get(key.lower(), key)
                if column in sent:
                    found.append(_same_column(index, column, sent[column], key))
                sent[column] = key
                out[column] = value
            renamed.append(out)
        if found:
            raise errors.InvalidInput(
                f"{len(found)} column(s) given twice, nothing was written: {found[0]['reason']}",
                errors=found[:MAX_REPORTED_ERRORS],
            )
        return renamed


def _read(use_case: UseCase, storage: str) -> UseCaseRead:
    return UseCaseRead(
        use_case=use_case,
        storage=storage,
        tables={t: table_name(use_case.name, t) for t in Table},
    )


def _same_column(index: int, column: str, first: str, second: str) -> dict[str, Any]:
    reason = (
        f"row {index}: keys {first!r} and {second!r} both name column {column!r} "
        "(names match ignoring case); send one"
    )
    return {"row": index, "column": printable(column), "reason": reason}


def _refuse_conflicting_labels(labels: list[dict[str, Any]]) -> None:
    """`InvalidInput` naming both rows when one message id is given two different
    values: PostgreSQL would store one of them, unsaid which."""
    first: dict[str, int] = {}
    found = []
    for index, label in enumerate(labels):
        seen = first.setdefault(label["message_id"], index)
        if seen != index and labels[seen]["value"] != label["value"]:
            reason = (
                f"row {index}: message_id {label['message_id']!r} already has another "
                f"value in row {seen}"
            )
            found.append({"row": index, "column": "value", "reason": reason})
    if found:
        raise errors.InvalidInput(
            f"{len(found)} conflicting label(s), nothing was written: {found[0]['reason']}",
            errors=found[:MAX_REPORTED_ERRORS],
        )


def _check_window(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise errors.InvalidInput(f"empty time window: start {start} is not before end {end}")
