"""The rows a retraining job learns from and is judged on, read through ml_data_api. The
API reads them when a job is asked for, to refuse at once what the job would refuse,
and the job reads them again (new labels may have arrived in between)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.schemas import Table, Task, UseCase
from retraining_api.settings import Settings


@dataclass(frozen=True)
class Data:
    """Training rows, held-out rows, and where the held-out rows came from."""

    training: pd.DataFrame
    holdout: pd.DataFrame  # the testing table's labelled rows, then the production rows
    parts: dict[str, int]  # held-out rows by table: {"testing": n, "production": m}

    @property
    def testing_rows(self) -> int:
        """How many of the held-out rows, first, are the testing table's."""
        return self.parts["testing"]


async def read(ml_data: MlDataClient, use_case: UseCase, settings: Settings) -> Data:
    """The use case's newest `max_rows` of each table, split into training and held-out
    rows, and checked against the minimum row counts (`errors.InvalidInput` if short)."""
    read_at_most = {"last": settings.max_rows, "limit": settings.max_rows}
    train_rows, test_rows, labelled = await asyncio.gather(
        ml_data.read_rows(use_case.name, Table.training, **read_at_most),
        ml_data.read_rows(use_case.name, Table.testing, **read_at_most),
        ml_data.read_rows(use_case.name, Table.production, labelled=True, **read_at_most),
    )
    # Building frames of up to 100,000 rows is CPU work: off the event loop.
    data = await asyncio.to_thread(
        split, use_case, train_rows, test_rows, labelled, settings.holdout_fraction
    )
    check_sizes(data, settings)
    return data


def split(
    use_case: UseCase,
    training_rows: list[dict[str, Any]],
    testing_rows: list[dict[str, Any]],
    labelled_rows: list[dict[str, Any]],
    fraction: float,
) -> Data:
    """Training rows, and held-out rows: the testing table's labelled rows, then the
    newest `fraction` of the labelled production rows, which are taken out of training
    (ml_data_api copies labelled production rows into the training table). An anomaly
    model learns from features alone, so its training rows need no label."""
    kept = round(len(labelled_rows) * fraction)
    recent = labelled_rows[len(labelled_rows) - kept :] if kept else []
    held_ids = {row["message_id"] for row in recent}
    unsupervised = use_case.task is Task.anomaly
    train_rows = [r for r in training_rows if r.get("message_id") not in held_ids]
    train = typed_frame(use_case, train_rows) if unsupervised else frame(use_case, train_rows)
    testing, production = frame(use_case, testing_rows), frame(use_case, recent)
    # Empty frames are left out: their columns' dtypes (object) would spread to all.
    held = [part for part in (testing, production) if len(part)] or [testing]
    holdout = pd.concat(held, ignore_index=True)
    return Data(train, holdout, {"testing": len(testing), "production": len(production)})


def frame(use_case: UseCase, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The labelled rows' feature and target columns, numbers as numbers (all the rows
    of a use case without a target)."""
    data = typed_frame(use_case, rows)
    if use_case.target is None:
        return data
    return data.dropna(subset=[use_case.target.name]).reset_index(drop=True)


def typed_frame(use_case: UseCase, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Message ids, features and the target (where rows have one), numbers as numbers."""
    typed = [*use_case.features, *([use_case.target] if use_case.target else [])]
    columns = ["message_id"] + [c.name for c in typed]
    data = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    for column in typed:
        if column.type.value in ("float", "int"):
            data[column.name] = pd.to_numeric(data[column.name])
    return data


def check_sizes(data: Data, settings: Settings) -> None:
    """`errors.InvalidInput` when there are fewer training or held-out rows than the
    settings' minimums."""
    if len(data.training) < settings.min_training_rows:
        raise errors.InvalidInput(
            f"too little data: {len(data.training)} training rows, at least "
            f"{settings.min_training_rows} needed (RETRAINING_MIN_TRAINING_ROWS)"
        )
    if len(data.holdout) < settings.min_holdout_rows:
        raise errors.InvalidInput(
            f"too little held-out data: {len(data.holdout)} testing and labelled production "
            f"rows, at least {settings.min_holdout_rows} needed (RETRAINING_MIN_HOLDOUT_ROWS)"
        )
