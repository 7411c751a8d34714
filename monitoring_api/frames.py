"""Rows read from ml_data_api as typed DataFrames, the role of each column, and a
fingerprint of the data a report is built from. Everything follows the use case."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd

from gits_common.schemas import ColumnType, Task, UseCase

PREDICTION = "prediction"
MODEL_VERSION = "model_version"
NUMERICAL_TYPES = {ColumnType.float, ColumnType.int}


class Role(StrEnum):
    """How a column is compared: as numbers or as labels."""

    numerical = "numerical"
    categorical = "categorical"


def feature_roles(use_case: UseCase) -> dict[str, Role]:
    """Each feature's role: numbers are numerical, booleans and texts categorical."""
    return {
        c.name: Role.numerical if c.type in NUMERICAL_TYPES else Role.categorical
        for c in use_case.features
    }


def label_role(use_case: UseCase) -> Role:
    """The role of the target and of the predictions: regression predicts numbers,
    classification and anomaly detection labels."""
    return Role.numerical if use_case.task is Task.regression else Role.categorical


@dataclass(frozen=True)
class Window:
    """Rows of one table as a DataFrame, and where they came from."""

    table: str
    frame: pd.DataFrame
    start: str | None
    end: str | None
    truncated: bool = False

    @property
    def rows(self) -> int:
        """How many rows the window holds."""
        return len(self.frame)


def to_frame(use_case: UseCase, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with numbers as floats and labels as texts (so a label 1
    read back as 1.0 beside a missing value still equals the prediction 1)."""
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        return frame
    frame[use_case.time_column] = pd.to_datetime(
        frame[use_case.time_column], utc=True, format="ISO8601"
    )
    for name, role in feature_roles(use_case).items():
        frame[name] = typed(frame[name], role)
    labels = [use_case.target.name] if use_case.target is not None else []
    for name in [*labels, PREDICTION]:
        if name in frame:
            frame[name] = typed(frame[name], label_role(use_case))
    return frame


def typed(values: pd.Series, role: Role) -> pd.Series:
    """Values as floats (numerical) or as texts with None for missing (categorical)."""
    if role is Role.numerical:
        return pd.to_numeric(values, errors="coerce").astype(float)
    return values.map(lambda v: None if v is None or v != v else str(v)).astype(object)


def before(use_case: UseCase, reference: Window, current: Window) -> Window:
    """The reference rows older than the current window's first row. Labelled production
    rows are copied into the training table, and a window compared with its own rows
    would hide the very drift it shows."""
    if current.frame.empty or reference.frame.empty:
        return reference
    time = use_case.time_column
    kept = reference.frame[reference.frame[time] < current.frame[time].min()]
    if len(kept) == len(reference.frame):
        return reference
    kept = kept.reset_index(drop=True)
    return Window(reference.table, kept, _iso(kept[time].min()), _iso(kept[time].max()))


def _iso(moment: pd.Timestamp) -> str | None:
    return None if pd.isna(moment) else moment.isoformat()


def labelled(use_case: UseCase, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose target is known."""
    if use_case.target is None or frame.empty:
        return frame.iloc[0:0]
    return frame[frame[use_case.target.name].notna()]


def most_common_model(frame: pd.DataFrame) -> str | None:
    """The model version that made most of the window's predictions."""
    if MODEL_VERSION not in frame:
        return None
    versions = frame[MODEL_VERSION].dropna()
    return None if versions.empty else str(versions.value_counts().index[0])


def fingerprint(*frames: pd.DataFrame) -> str:
    """A digest of the frames' columns and values: equal data, equal digest."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(repr(list(frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
