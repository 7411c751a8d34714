"""Drift with Evidently, one method per kind of column everywhere (reports and the metric
history alike), so a feature's drift score always means the same thing."""

from __future__ import annotations

from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from monitoring_api.frames import Role

# Wasserstein distance normed by the reference's standard deviation: 0.1 is a shift of a
# tenth of a standard deviation, whatever the feature's unit. Labels and texts get the
# Jensen-Shannon distance, on the same 0..1 scale with the same threshold.
METHODS = {Role.numerical: "wasserstein", Role.categorical: "jensenshannon"}
THRESHOLD = 0.1
METHOD_NAMES = {
    Role.numerical: "Wasserstein distance (normed)",
    Role.categorical: "Jensen-Shannon distance",
}


def describe_method() -> dict[str, Any]:
    """How drift is measured, for the JSON of every drift report."""
    return {
        "numerical": METHOD_NAMES[Role.numerical],
        "categorical": METHOD_NAMES[Role.categorical],
        "threshold": THRESHOLD,
        "drifted": f"score >= {THRESHOLD}",
    }


def definition(roles: dict[str, Role]) -> DataDefinition:
    """An Evidently data definition of these columns."""
    return DataDefinition(
        numerical_columns=[c for c, r in roles.items() if r is Role.numerical],
        categorical_columns=[c for c, r in roles.items() if r is Role.categorical],
    )


def datasets(
    current: pd.DataFrame, reference: pd.DataFrame, roles: dict[str, Role]
) -> tuple[Dataset, Dataset]:
    """Both frames, cut to these columns, as Evidently datasets."""
    columns = list(roles)
    data = definition(roles)
    return (
        Dataset.from_pandas(current[columns], data_definition=data),
        Dataset.from_pandas(reference[columns], data_definition=data),
    )


def drift_report(
    current: pd.DataFrame, reference: pd.DataFrame, roles: dict[str, Role], *, full: bool
) -> Snapshot:
    """Evidently's drift of each column. `full` runs the preset, whose HTML shows each
    distribution; otherwise only the scores are computed, about twice as fast."""
    methods = {column: METHODS[role] for column, role in roles.items()}
    metrics: list[Any]
    if full:
        metrics = [
            DataDriftPreset(columns=list(roles), per_column_method=methods, threshold=THRESHOLD)
        ]
    else:
        metrics = [
            ValueDrift(column=column, method=method, threshold=THRESHOLD)
            for column, method in methods.items()
        ]
    return Report(metrics).run(*datasets(current, reference, roles))


def scores(snapshot: Snapshot) -> dict[str, float]:
    """Each column's drift score in a drift snapshot."""
    found: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift"):
            found[config["column"]] = float(metric["value"])
    return found


def summary(column_scores: dict[str, float]) -> dict[str, Any]:
    """Drift share, drifted count and each column's {score, drifted}."""
    drifted = {c: s >= THRESHOLD for c, s in column_scores.items()}
    count = sum(drifted.values())
    return {
        "method": describe_method(),
        "drift_share": count / len(column_scores) if column_scores else 0.0,
        "drifted_features": count,
        "features": {c: {"score": s, "drifted": drifted[c]} for c, s in column_scores.items()},
    }
