"""An anomaly use case's flags over a window as plain functions over DataFrames: the
flagged share per time bucket, and the flagged rows merged into events with their
time spans. A production row's `prediction` is its flag (1 anomaly, 0 normal), its
`prediction_score` the model's anomaly score (higher is more anomalous)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gits_common.schemas import UseCase
from monitoring_api import performance
from monitoring_api.frames import PREDICTION, PREDICTION_SCORE, buckets


@dataclass(frozen=True)
class Rate:
    """The flags of one time bucket [start, end)."""

    start: pd.Timestamp
    end: pd.Timestamp
    rows: int
    flagged: int

    @property
    def rate(self) -> float:
        """flagged / rows, in 0..1."""
        return self.flagged / self.rows


def predicted(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that have a flag (a worker stored its prediction)."""
    return frame[frame[PREDICTION].notna()] if PREDICTION in frame else frame.iloc[0:0]


def flags(frame: pd.DataFrame) -> np.ndarray:
    """Whether each row is flagged (n booleans)."""
    return np.asarray(frame[PREDICTION].tolist()) == performance.ANOMALY


def rates(use_case: UseCase, frame: pd.DataFrame, seconds: int) -> list[Rate]:
    """The flagged share of each bucket of `seconds` that holds predicted rows, oldest
    first (frames.buckets: buckets without rows are left out)."""
    return [
        Rate(bucket.start, bucket.end, len(bucket.frame), int(flags(bucket.frame).sum()))
        for bucket in buckets(use_case, predicted(frame), seconds)
    ]


def events(use_case: UseCase, frame: pd.DataFrame, merge_seconds: float) -> list[dict[str, Any]]:
    """The flagged rows, oldest first, merged into one event while each is less than
    `merge_seconds` after the previous flagged one: [{start, end (the first and last
    flagged row's time), rows, max_score, mean_score (None when no row has a score)}]."""
    rows = predicted(frame)
    flagged = rows[flags(rows)].sort_values(use_case.time_column, kind="stable")
    if flagged.empty:
        return []
    times = flagged[use_case.time_column]
    gap = times.diff() >= pd.Timedelta(seconds=merge_seconds)
    event_of = gap.cumsum()
    return [_event(event, use_case.time_column) for _, event in flagged.groupby(event_of)]


def _event(rows: pd.DataFrame, time_column: str) -> dict[str, Any]:
    scores = rows[PREDICTION_SCORE].dropna() if PREDICTION_SCORE in rows else pd.Series()
    return {
        "start": rows[time_column].iloc[0],
        "end": rows[time_column].iloc[-1],
        "rows": len(rows),
        "max_score": float(scores.max()) if len(scores) else None,
        "mean_score": float(scores.mean()) if len(scores) else None,
    }


def flag_quality(use_case: UseCase, frame: pd.DataFrame) -> dict[str, Any] | None:
    """Realised precision, recall and F1 of the flags on the rows whose true label (the
    target, 0/1) is known, with their count and the true anomalies among them; None
    when no predicted row is labelled or the use case has no target."""
    if use_case.target is None:
        return None
    rows = predicted(frame)
    rows = rows[rows[use_case.target.name].notna()]
    if rows.empty:
        return None
    truth = rows[use_case.target.name]
    anomalies = int((np.asarray(truth.tolist()) == performance.ANOMALY).sum())
    scores = performance.anomaly(truth, rows[PREDICTION])
    return {"rows": len(rows), "anomalies": anomalies, **scores}
