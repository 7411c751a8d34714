"""Rows read from ml_data_api as typed DataFrames, the role of each column, and a
fingerprint of the data a report is built from. Everything follows the use case.

Every value keeps the type its use case declares (gits_common.schemas.ColumnType):
labels are compared as the ints, booleans, texts or floats they are, never through a
representation that could make `1` differ from `1.0` or `"1"` equal `1`."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from gits_common.schemas import ColumnType, Task, UseCase
from gits_common.values import VALUE_TYPES
from gits_ml.modeling import prediction_type

PREDICTION = "prediction"
PREDICTION_SCORE = "prediction_score"
MODEL_VERSION = "model_version"
NUMERICAL_TYPES = {ColumnType.float, ColumnType.int}


class Role(StrEnum):
    """How a column is compared: as numbers or as labels."""

    numerical = "numerical"
    categorical = "categorical"


@dataclass(frozen=True)
class Kind:
    """A value column's declared type and how it is compared."""

    type: ColumnType
    role: Role


def feature_roles(use_case: UseCase) -> dict[str, Role]:
    """Each feature's role: numbers are numerical, booleans and texts categorical."""
    return {c.name: _role(c.type) for c in use_case.features}


def label_role(use_case: UseCase) -> Role:
    """The role of the target and of the predictions: a regression's numbers are
    numerical; classes and anomaly flags are labels, whatever their type (and so is a
    regression target that is not a number, which no regression metric can read)."""
    if use_case.task is Task.regression:
        return _role(prediction_type(use_case))
    return Role.categorical


def kinds(use_case: UseCase) -> dict[str, Kind]:
    """The type and role of every value column: the features, the target, and
    `prediction`, whose type is the target's, or int for an anomaly use case without one
    (as ml_data_api stores it: ml_data_api.tables.fields)."""
    out = {c.name: Kind(c.type, _role(c.type)) for c in use_case.features}
    labels = Kind(prediction_type(use_case), label_role(use_case))
    if use_case.target is not None:
        out[use_case.target.name] = labels
    out[PREDICTION] = labels
    return out


def _role(column_type: ColumnType) -> Role:
    return Role.numerical if column_type in NUMERICAL_TYPES else Role.categorical


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
    """Rows as a DataFrame: numerical columns as floats (NaN when missing), label
    columns as Python values of their declared type (None when missing). Read as
    objects first: pandas' own reading turns an int column with a missing value into
    floats (1 becomes 1.0, and 2**53 + 1 another number). Raises ValueError for a value
    that is not of its column's type."""
    frame = pd.DataFrame(rows, dtype=object)
    if frame.empty:
        return frame
    frame[use_case.time_column] = pd.to_datetime(
        frame[use_case.time_column], utc=True, format="ISO8601"
    )
    for name, kind in kinds(use_case).items():
        if name in frame:
            frame[name] = typed(frame[name], kind)
    if PREDICTION_SCORE in frame:
        frame[PREDICTION_SCORE] = pd.to_numeric(frame[PREDICTION_SCORE]).astype(float)
    return frame


def typed(values: pd.Series, kind: Kind) -> pd.Series:
    """Values as floats with NaN for missing (numerical), or as Python values of the
    declared type with None for missing (labels). pandas reads an int column with a
    missing value as floats: an integral float of an int column is its int again.
    Raises ValueError naming the first value that is not of the type."""
    if kind.role is Role.numerical:
        return pd.to_numeric(values).astype(float)
    plain = [_plain(v, kind.type) for v in values.tolist()]
    try:
        checked = _labels_adapter(kind.type).validate_python(plain)
    except ValidationError as exc:
        index = exc.errors()[0]["loc"][0]
        raise ValueError(
            f"{plain[int(index)]!r} is not a value of type {kind.type.value}"
        ) from None
    return pd.Series(checked, index=values.index, dtype=object, name=values.name)


def _plain(value: Any, column_type: ColumnType) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if column_type is ColumnType.int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@cache
def _labels_adapter(column_type: ColumnType) -> TypeAdapter[list[Any]]:
    # The same strict types ml_data_api accepts (gits_common.values): true is no int.
    value: Any = VALUE_TYPES[column_type]
    return TypeAdapter(list[value | None])


def classes(values: pd.Series) -> pd.Series:
    """Labels as scikit-learn and Evidently read classes: ints, booleans and texts as
    they are, floats as their texts (both libraries take fractional numbers for a
    continuous target; the texts of one float column compare as its floats do)."""
    # + 0.0 makes -0.0 the 0.0 it equals. Built as objects: pandas would infer floats
    # for ints beside a None.
    coded = [repr(v + 0.0) if isinstance(v, float) else v for v in values.tolist()]
    return pd.Series(coded, index=values.index, dtype=object, name=values.name)


def class_array(values: pd.Series) -> np.ndarray:
    """Labels without missing values as the numpy array scikit-learn's metrics need: of
    ints, booleans or texts (an object array of ints is no class vector to them)."""
    return np.array(classes(values).tolist())


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


def fingerprint(*frames: pd.DataFrame) -> str:
    """A digest of the frames' columns and values: equal data, equal digest."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(repr(list(frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Bucket:
    """The rows of one time bucket [start, end) of a window."""

    start: pd.Timestamp
    end: pd.Timestamp
    frame: pd.DataFrame


def buckets(use_case: UseCase, frame: pd.DataFrame, seconds: int) -> list[Bucket]:
    """The window's rows in buckets of `seconds` of its time column, aligned on the Unix
    epoch (so that two windows bucket a row alike), oldest first; a bucket without rows
    is left out."""
    if frame.empty:
        return []
    times = frame[use_case.time_column]
    width = pd.Timedelta(seconds=seconds)
    starts = times.dt.floor(width)
    return [Bucket(start, start + width, rows) for start, rows in frame.groupby(starts, sort=True)]
