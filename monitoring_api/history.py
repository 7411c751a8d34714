"""One point of the metric history as plain functions over DataFrames: drift of every
feature, realised performance, and which thresholds the point crosses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from gits_common.monitoring import (
    ANOMALY_RATE,
    DRIFT_P_VALUE,
    DRIFT_SCORE,
    DRIFT_SHARE,
    Thresholds,
)
from gits_common.schemas import Task, UseCase
from monitoring_api import drift, performance
from monitoring_api.frames import PREDICTION, feature_roles, labelled

SERIES = {"distance": DRIFT_SCORE, "p_value": DRIFT_P_VALUE}

Value = tuple[str, str | None, float]  # (metric, feature or None, value)


@dataclass(frozen=True)
class Point:
    """What one history point measured."""

    values: list[Value]
    rows: int
    labelled_rows: int


def scored_rows(use_case: UseCase, window: pd.DataFrame) -> pd.DataFrame:
    """The window's rows that have both a true label and a prediction."""
    done = labelled(use_case, window)
    return done[done[PREDICTION].notna()] if PREDICTION in done else done.iloc[0:0]


def compute(
    use_case: UseCase,
    window: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    min_labelled: int,
    reference_predictions: pd.Series | None,
    estimated: dict[str, float | None] | None = None,
) -> Point:
    """Drift share and each feature's drift score (or p-value) of the window against the
    reference; an anomaly use case's share of flagged rows (`anomaly_rate`); with at
    least `min_labelled` scored rows, realised performance, and with the model's
    predictions on the reference, its primary metric there (`reference_mae`,
    `reference_accuracy`, `reference_f1`); and the performance `estimated` before the
    labels (estimation.Estimator: `estimated_accuracy`, `estimated_mae`, ...)."""
    found = drift.measure(window, reference, feature_roles(use_case), full=False)
    values: list[Value] = [(DRIFT_SHARE, None, drift.summary(found)["drift_share"])]
    values += [
        (SERIES[found.methods[feature].kind], feature, score)
        for feature, score in found.scores.items()
    ]
    if use_case.task is Task.anomaly and PREDICTION in window:
        rate = performance.flag_rate(window[PREDICTION])
        values += [] if rate is None else [(ANOMALY_RATE, None, rate)]
    scored = scored_rows(use_case, window)
    if len(scored) >= min_labelled:
        values += _performance(use_case, scored, reference, reference_predictions)
    values += [
        (f"estimated_{name}", None, value)
        for name, value in (estimated or {}).items()
        if value is not None
    ]
    return Point(values, len(window), len(scored))


def _performance(
    use_case: UseCase,
    scored: pd.DataFrame,
    reference: pd.DataFrame,
    reference_predictions: pd.Series | None,
) -> list[Value]:
    """Realised performance, and the model's primary metric on the reference."""
    task = use_case.task
    if use_case.target is None or task not in performance.HISTORY_METRICS:
        return []
    target = use_case.target.name
    realised = performance.evaluate(task, scored[target], scored[PREDICTION])
    if task is Task.classification:
        positive = performance.positive_class(reference[target])
        realised["roc_auc"], _ = performance.scored_auc(scored, target, positive)
    values: list[Value] = [
        (name, None, value)
        for name in performance.HISTORY_METRICS[task]
        if (value := realised.get(name)) is not None
    ]
    if reference_predictions is not None:
        primary, _ = performance.PRIMARY[task]
        expected = performance.evaluate(task, reference[target], reference_predictions)
        if (value := expected[primary]) is not None:
            values.append((f"reference_{primary}", None, value))
    return values


def crossings(use_case: UseCase, values: list[Value], limits: Thresholds) -> list[dict[str, Any]]:
    """The alerts a point's values raise against the thresholds (before any cool-down).
    `feature_drift_score` is a distance: it applies to drift scores, not to p-values;
    `anomaly_rate` applies to an anomaly use case's share of flagged rows."""
    found = [_alert(*crossed) for crossed in limits.drift_crossings(values)]
    found += [_alert(*crossed) for crossed in limits.rate_crossings(values)]
    if limits.performance_drop is not None and use_case.task in performance.PRIMARY:
        primary, _ = performance.PRIMARY[use_case.task]
        by_name = {metric: value for metric, feature, value in values if feature is None}
        realised, expected = by_name.get(primary), by_name.get(f"reference_{primary}")
        if realised is not None and expected is not None:
            boundary = performance.dropped(
                use_case.task, realised, expected, limits.performance_drop
            )
            if boundary is not None:
                found.append(_alert(primary, None, realised, boundary))
    return found


def _alert(metric: str, feature: str | None, value: float, threshold: float) -> dict[str, Any]:
    return {"metric": metric, "feature": feature, "value": value, "threshold": threshold}
