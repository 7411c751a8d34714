"""Seeding a use case's training and testing tables, from the demo generator or CSV."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from gits_common import csv_files
from gits_common.clients import MlDataClient, rows_from_frame
from gits_common.schemas import Table, UseCase
from gits_ml.demo import DemoConfig
from gits_ml.demos import DEMOS

log = logging.getLogger(__name__)


def demo_splits(seed: int, name: str = "product_quality") -> dict[Table, pd.DataFrame]:
    """A demo use case's training and testing splits (`gits_ml.demos.DEMOS`)."""
    data = DEMOS[name].generate(DemoConfig(seed=seed))
    return {Table.training: data.training, Table.testing: data.testing}


def read_csv(use_case: UseCase, path: Path) -> pd.DataFrame:
    """A CSV file with the use case's columns, typed by its definition
    (`gits_common.csv_files.read_rows`: ids and times made where the file has none)."""
    return csv_files.read_rows(use_case, path, with_target=True, time_now=True)


async def load(
    client: MlDataClient,
    use_case: UseCase,
    splits: dict[Table, pd.DataFrame],
    *,
    batch_size: int = 5000,
    on_rows: Callable[[Table, int], None] | None = None,
) -> dict[Table, dict[str, int]]:
    """Register the use case and insert each split in batches; rows already stored
    (same message_id) are skipped, so loading twice changes nothing. `on_rows(table, n)`
    is told of every batch of n rows sent (a progress bar)."""
    await client.register_use_case(use_case)
    totals: dict[Table, dict[str, int]] = {}
    for table, frame in splits.items():
        rows = rows_from_frame(frame)
        total = {"inserted": 0, "skipped": 0}
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            result = await client.insert_rows(use_case.name, table, batch)
            total = {k: total[k] + result[k] for k in total}
            if on_rows is not None:
                on_rows(table, len(batch))
        log.info(
            "%s %s: %d rows new, %d already there",
            use_case.name,
            table.value,
            total["inserted"],
            total["skipped"],
        )
        totals[table] = total
    return totals
