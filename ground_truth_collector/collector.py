"""The collector's loop: read the predictions whose labels are due, send the labels
the source knows, remember how far it got. Restart-safe: the cursor is saved after each
batch, and only rows still without a label are read again, so none is sent twice."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.lifecycle import pause
from gits_common.schemas import Table
from ground_truth_collector.metrics import LabelMetrics, Run
from ground_truth_collector.sources import LabelSource

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Cursor:
    """The reading time up to which labels were sent, kept in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> datetime:
        """The saved position, or the beginning of time."""
        try:
            return datetime.fromisoformat(json.loads(self.path.read_text())["cursor"])
        except FileNotFoundError:
            return EPOCH

    def save(self, position: datetime) -> None:
        """Save atomically: a crash leaves the old position or the new, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"cursor": position.isoformat()}))
        os.replace(temporary, self.path)


@dataclass
class Collector:
    """Sends one use case's labels from one source to ml_data_api."""

    client: MlDataClient
    source: LabelSource
    use_case: str
    time_column: str
    cursor: Cursor
    delay: timedelta
    overlap: timedelta
    batch_size: int
    # Labels the source reported as arrived that ml_data_api has not taken yet.
    pending: dict[str, Any] = field(default_factory=dict)
    metrics: LabelMetrics | None = None  # None: counted in a registry nobody serves
    counted: LabelMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.counted = self.metrics or LabelMetrics(self.use_case)

    async def run_once(self, now: datetime | None = None) -> int:
        """Send the labels that arrived since the last run, whatever their reading's
        time, then every label now due; returns how many production rows got one."""
        sent = await self._send_arrived()
        until = (now or datetime.now(UTC)) - self.delay
        start = max(EPOCH, self.cursor.load() - self.overlap)  # late predictions too
        while True:
            rows = await self.client.read_rows(
                self.use_case,
                Table.production,
                start=start.isoformat(),
                end=until.isoformat(),
                labelled=False,
                limit=self.batch_size,
            )
            ids = [row["message_id"] for row in rows]
            labels = await asyncio.to_thread(self.source.labels_for, ids)  # files, psycopg2
            if labels:
                body = [{"message_id": mid, "value": value} for mid, value in labels.items()]
                sent += await self._attach(body)
            if len(rows) < self.batch_size:
                self.cursor.save(until)
                return sent
            # A full page: go on from its last reading (never standing still on a tie).
            last = datetime.fromisoformat(rows[-1][self.time_column])
            start = max(last, start + timedelta(microseconds=1))
            self.cursor.save(start)

    async def _send_arrived(self) -> int:
        """Labels that came in late, for readings the window has passed (a lab's CSV
        that grows); ids without a prediction yet are found later, when due."""
        self.pending.update(await asyncio.to_thread(self.source.arrived))
        sent = 0
        while self.pending:
            batch = dict(list(self.pending.items())[: self.batch_size])
            body = [{"message_id": mid, "value": value} for mid, value in batch.items()]
            sent += await self._attach(body)
            for mid in batch:
                del self.pending[mid]
        return sent

    async def _attach(self, body: list[dict[str, Any]]) -> int:
        """Send labels; how many predictions ml_data_api labelled (counted)."""
        labelled = int((await self.client.attach_labels(self.use_case, body))["labelled"])
        self.counted.labels_sent.inc(labelled)
        return labelled

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Collect every `interval` seconds until stopped; an unreachable ml_data_api is
        waited out, never fatal."""
        while not stop.is_set():
            try:
                sent = await self.run_once()
                self.counted.runs[Run.ok].inc()
                if sent:
                    log.info("sent %d label(s) for %s", sent, self.use_case)
            except (errors.Unavailable, errors.NotFound) as exc:
                self.counted.runs[Run.failed].inc()
                log.warning("could not collect labels: %s", exc.detail)
            await pause(stop, interval)
