"""Where true labels come from. A source answers, for production message ids, the
labels known for them; the collector does the rest. Three sources: the demo's generator
(`DemoLabels`), a CSV file that may grow while the collector runs (`CsvLabels`), and a
PostgreSQL table or view (`TableLabels`). Sources block (files, psycopg2): the collector
calls them off the event loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from gits_common import errors
from gits_common.schemas import Column
from gits_ml.demo import DemoConfig
from gits_ml.demos import Demo
from ground_truth_collector.labels import ID_COLUMN, parse_csv_labels, parse_label

log = logging.getLogger(__name__)
# A CSV whose last line has no newline yet and that changed this recently is being
# written: that line waits, else "35.25" cut at "35.2" would be sent as a label.
SETTLE_SECONDS = 5.0


class LabelSource(Protocol):
    """Labels for the production readings that have one."""

    def labels_for(self, message_ids: list[str]) -> dict[str, Any]:
        """{message_id: label} for the ids this source knows."""
        ...

    def arrived(self) -> dict[str, Any]:
        """{message_id: label} of the labels that came in since the last call (at the
        first: all it has), whenever their readings were; {} for a source that can only
        be asked by id."""
        ...

    def close(self) -> None:
        """Let go of what the source holds (files, connections)."""
        ...


class DemoLabels:
    """A demo use case's ground-truth split (`gits_ml.demos.DEMOS`): product_quality's
    lab quality and quality_class's grade for about one reading in
    `ground_truth_every_minutes`, sensor_anomaly's verdict for every minute. data_source
    sends a demo row as `<row id>~<run>`, so the row id before the `~` finds the label,
    whichever run or replay sent it."""

    def __init__(self, demo: Demo, config: DemoConfig) -> None:
        truth = demo.generate(config).ground_truth
        labels = truth[demo.target].tolist()  # plain Python values of the target's type
        self._labels = dict(zip(truth["message_id"], labels, strict=True))

    def labels_for(self, message_ids: list[str]) -> dict[str, Any]:
        """The demo label of each id whose row has one."""
        found = {mid: self._labels.get(mid.split("~", 1)[0]) for mid in message_ids}
        return {mid: label for mid, label in found.items() if label is not None}

    def arrived(self) -> dict[str, Any]:
        """None: a demo label is due GROUND_TRUTH_DELAY_SECONDS after its reading."""
        return {}

    def close(self) -> None:
        """Nothing is held."""


class CsvLabels:
    """Labels from a CSV file with the columns `message_id` and the target, matched to
    production message ids exactly; a later row of an id wins. The file is read again
    whenever its size or modification time changes, so rows appended while the
    collector runs are found, and sent even when their readings are long past (see
    `arrived`). A row with no id or an unusable label is skipped, with one
    warning naming how many rows were skipped whenever that number changes."""

    def __init__(
        self,
        path: Path,
        target: Column,
        *,
        column: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.target = target
        self.column = column  # the target's name in the file, where it differs
        self._clock = clock
        self._labels: dict[str, Any] = {}
        self._seen: tuple[int, int, bool] | None = None
        self._refused = 0
        self._arrived: dict[str, Any] = {}

    def labels_for(self, message_ids: list[str]) -> dict[str, Any]:
        """The file's label of each id it has. Raises `NotFound` while the file, or one
        of its two columns, is missing (the collector says so and tries again)."""
        self._refresh()
        return {mid: self._labels[mid] for mid in message_ids if mid in self._labels}

    def arrived(self) -> dict[str, Any]:
        """The labels new or changed in the file since the last call; at the first, all
        of it (labelling a row again with the same value changes nothing). Raises
        `NotFound` as `labels_for` does."""
        self._refresh()
        arrived, self._arrived = self._arrived, {}
        return arrived

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._labels = None, {}
            raise errors.NotFound(f"no label file {str(self.path)!r} (yet)") from None
        settled = self._clock() - stat.st_mtime >= SETTLE_SECONDS
        version = (stat.st_size, stat.st_mtime_ns, settled)
        if version == self._seen:
            return
        text = self.path.read_text(encoding="utf-8-sig", errors="replace")
        if not settled and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        parsed = parse_csv_labels(text, self.target, source=str(self.path), column=self.column)
        if parsed.refused and len(parsed.refused) != self._refused:
            log.warning(
                "skipped %d row(s) of %s with no message id or an unusable label (first: %s)",
                len(parsed.refused),
                self.path,
                parsed.refused[0],
            )
        for mid, label in parsed.labels.items():
            if mid not in self._labels or self._labels[mid] != label:
                self._arrived[mid] = label
        self._labels, self._refused, self._seen = parsed.labels, len(parsed.refused), version

    def close(self) -> None:
        """Nothing is held between reads."""


class TableLabels:
    """Labels from a PostgreSQL table or view (`name` or `schema.name`) with the columns
    `message_id` and the target, read by id for each batch of predictions. A NULL label
    is one not known yet; a label of the wrong type is skipped with a warning. A table
    is only asked by id, for the predictions in the collector's window: a label written
    after its reading left the window (GROUND_TRUTH_OVERLAP_SECONDS) is not found."""

    def __init__(
        self,
        dsn: str,
        table: str,
        target: Column,
        *,
        connect: Callable[[str], Connection] = psycopg2.connect,
    ) -> None:
        self.table = table
        self.target = target
        self._dsn = dsn
        self._connect = connect
        self._conn: Connection | None = None
        self._query = sql.SQL("SELECT {id}, {label} FROM {table} WHERE {id} = ANY(%s)").format(
            id=sql.Identifier(ID_COLUMN),
            label=sql.Identifier(target.name),
            table=sql.Identifier(*table.split(".", 1)),
        )

    def labels_for(self, message_ids: list[str]) -> dict[str, Any]:
        """The table's label of each id it has. Raises `Unavailable` when PostgreSQL
        cannot be reached, `NotFound` while the table or a column is missing (the
        collector says so and tries again)."""
        if not message_ids:
            return {}
        labels, refused = {}, []
        for message_id, value in self._rows(message_ids):
            if value is None:
                continue
            try:
                labels[message_id] = parse_label(value, self.target)
            except ValueError as exc:
                refused.append(f"message_id {message_id!r}: {exc}")
        if refused:
            log.warning(
                "skipped %d label(s) of %s of the wrong type (first: %s)",
                len(refused),
                self.table,
                refused[0],
            )
        return labels

    def _rows(self, message_ids: list[str]) -> list[tuple[Any, Any]]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect(self._dsn)
                self._conn.set_session(readonly=True, autocommit=True)
            with self._conn.cursor() as cur:
                cur.execute(self._query, (message_ids,))
                return list(cur.fetchall())
        except (pg_errors.UndefinedTable, pg_errors.UndefinedColumn) as exc:
            raise errors.NotFound(f"label table {self.table}: {_first_line(exc)}") from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            self.close()
            raise errors.Unavailable(f"label database unavailable: {_first_line(exc)}") from exc

    def arrived(self) -> dict[str, Any]:
        """None: a table without an arrival time can only be asked by id."""
        return {}

    def close(self) -> None:
        """Close the connection, if open; the next read opens another."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
