"""The five reports as plain functions over DataFrames: an Evidently snapshot and a
compact summary of our own. Blocking (Evidently, pandas): call them in a thread."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from evidently import (
    BinaryClassification,
    DataDefinition,
    Dataset,
    MulticlassClassification,
    Regression,
    Report,
)
from evidently.core.report import Snapshot
from evidently.presets import ClassificationPreset, DataSummaryPreset, RegressionPreset

from gits_common import errors
from gits_common.monitoring import ReportFormat, ReportKind
from gits_common.schemas import Task, UseCase
from monitoring_api import drift, performance
from monitoring_api.frames import (
    PREDICTION,
    Role,
    classes,
    feature_roles,
    label_role,
    labelled,
)


@dataclass(frozen=True)
class Inputs:
    """What a report is built from. `reference_predictions` are the model's predictions
    on the reference rows, when the model could be had; `model` says which model and,
    when it could not, why."""

    use_case: UseCase
    current: pd.DataFrame
    reference: pd.DataFrame
    reference_predictions: pd.Series | None = None
    model: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Built:
    """A report: our summary and Evidently's snapshot."""

    metrics: dict[str, Any]
    snapshot: Snapshot


def data_quality(inputs: Inputs) -> Built:
    """Evidently's data summary of the features and target, and per column the missing
    share and the centre and spread (numbers) or the most common value (labels)."""
    roles = _with_target(inputs.use_case, feature_roles(inputs.use_case))

    def run(columns: dict[str, Role]) -> Snapshot:
        current, reference = drift.datasets(inputs.current, inputs.reference, columns)
        return Report([DataSummaryPreset()]).run(current, reference)

    snapshot, unmeasured = drift.isolated(run, roles)
    columns = {
        name: {
            "current": _stats(inputs.current[name], role),
            "reference": _stats(inputs.reference[name], role),
        }
        for name, role in roles.items()
    }
    return Built({"columns": columns, "unmeasured": unmeasured}, snapshot)


def data_drift(inputs: Inputs) -> Built:
    """The drift of every feature, each by the method its data allow (drift.choose),
    and the share that drifted."""
    roles = feature_roles(inputs.use_case)
    found = drift.measure(inputs.current, inputs.reference, roles, full=True)
    return Built(drift.summary(found), found.snapshot)


def target_drift(inputs: Inputs) -> Built:
    """The drift of the true labels: labelled production rows against the reference."""
    target = _target(inputs.use_case)
    current = labelled(inputs.use_case, inputs.current)
    return _one_column_drift(inputs.use_case, target, current, inputs.reference, {})


def prediction_drift(inputs: Inputs) -> Built:
    """The drift of the predictions against the model's own predictions on the reference
    rows, or against the reference target when the model cannot be had."""
    current = inputs.current[inputs.current[PREDICTION].notna()]
    if inputs.reference_predictions is not None:
        reference = pd.DataFrame({PREDICTION: inputs.reference_predictions})
        compared = {"compared_with": "the model's predictions on the reference rows"}
    elif inputs.use_case.target is not None:
        reference = pd.DataFrame({PREDICTION: inputs.reference[inputs.use_case.target.name]})
        compared = {"compared_with": "the reference target (the model could not be had)"}
    else:
        raise errors.InvalidInput(
            f"no model to predict the reference rows ({inputs.model.get('reason')}) and no "
            "target to compare the predictions with"
        )
    if current.empty:
        raise errors.InvalidInput("no production row in the window has a prediction")
    extra = {**compared, "model": inputs.model}
    return _one_column_drift(inputs.use_case, PREDICTION, current, reference, extra)


def _one_column_drift(
    use_case: UseCase,
    column: str,
    current: pd.DataFrame,
    reference: pd.DataFrame,
    extra: dict[str, Any],
) -> Built:
    role = label_role(use_case)
    found = drift.measure(current, reference, {column: role}, full=True)
    score, method = found.scores[column], found.methods[column]
    metrics = {
        "drift_methods": drift.describe_rule(),
        "column": column,
        "score": score,
        "drifted": method.drifted(score),
        **method.describe(),
        "current": {"rows": len(current), **_stats(current[column], role)},
        "reference": {"rows": len(reference), **_stats(reference[column], role)},
        **extra,
    }
    return Built(metrics, found.snapshot)


def model_performance(inputs: Inputs) -> Built:
    """Realised performance on the labelled production rows beside the model's on the
    reference rows, so a drop shows."""
    use_case, target = inputs.use_case, _target(inputs.use_case)
    current = labelled(use_case, inputs.current)
    current = current[current[PREDICTION].notna()]
    if current.empty:
        raise errors.InvalidInput("no labelled production row in the window has a prediction")
    task = use_case.task
    realised = performance.evaluate(task, current[target], current[PREDICTION])
    reference, expected = None, None
    if inputs.reference_predictions is not None:
        reference = inputs.reference[[target]].assign(**{PREDICTION: inputs.reference_predictions})
        expected = performance.evaluate(task, reference[target], reference[PREDICTION])
    snapshot = _quality_report(use_case, current[[target, PREDICTION]], reference)
    metrics = {
        "task": task.value,
        "current": {"rows": len(current), **realised},
        "reference": None if reference is None else {"rows": len(reference), **(expected or {})},
        "change": _change(realised, expected),
        "model": inputs.model,
    }
    if task is Task.classification:
        metrics["average"] = "macro over the classes (precision, recall, f1)"
    return Built(metrics, snapshot)


def _quality_report(
    use_case: UseCase, current: pd.DataFrame, reference: pd.DataFrame | None
) -> Snapshot:
    target = _target(use_case)
    if use_case.task is Task.regression:
        definition = DataDefinition(
            numerical_columns=[target, PREDICTION],
            regression=[Regression(target=target, prediction=PREDICTION)],
        )
        preset: Any = RegressionPreset()
    else:
        current = _as_classes(current)
        reference = None if reference is None else _as_classes(reference)
        definition = _classification_definition(target, current, reference)
        preset = ClassificationPreset()
    datasets = [
        None if frame is None else Dataset.from_pandas(frame, data_definition=definition)
        for frame in (current, reference)
    ]
    return Report([preset]).run(datasets[0], datasets[1])


def _as_classes(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({column: classes(frame[column]) for column in frame.columns})


# The positive class of a binary classification, when its labels hold one of these
# (of the use case's type: 1 is an int's, True a boolean's, "1" a text's).
POSITIVE_LABELS: tuple[Any, ...] = (1, True, "1", "1.0", "true", "True", "yes")


def _classification_definition(
    target: str, current: pd.DataFrame, reference: pd.DataFrame | None
) -> DataDefinition:
    """Evidently's definition of the classes in these frames (frames.classes labels,
    all of one type)."""
    frames = [current] if reference is None else [current, reference]
    labels = {v for f in frames for c in (target, PREDICTION) for v in f[c]}
    kind: Any
    if len(labels) <= 2:
        # Evidently's binary metrics need the positive class.
        positive = next(
            (p for p in POSITIVE_LABELS if any(_same(p, v) for v in labels)), max(labels)
        )
        kind = BinaryClassification(target=target, prediction_labels=PREDICTION, pos_label=positive)
    else:
        kind = MulticlassClassification(target=target, prediction_labels=PREDICTION)
    return DataDefinition(categorical_columns=[target, PREDICTION], classification=[kind])


def _same(candidate: Any, label: Any) -> bool:
    """Equal and of the same type: 1 is not True, and "1" is not 1."""
    return type(candidate) is type(label) and candidate == label


BUILDERS: dict[ReportKind, Callable[[Inputs], Built]] = {
    ReportKind.data_quality: data_quality,
    ReportKind.data_drift: data_drift,
    ReportKind.target_drift: target_drift,
    ReportKind.prediction_drift: prediction_drift,
    ReportKind.model_performance: model_performance,
}
NEEDS_LABELS = {ReportKind.target_drift, ReportKind.model_performance}
NEEDS_MODEL = {ReportKind.prediction_drift, ReportKind.model_performance}


def render(built: Built, fmt: ReportFormat, header: dict[str, Any]) -> bytes:
    """The report as JSON (summary, and Evidently's snapshot under "evidently") or as a
    self-contained HTML page."""
    if fmt is ReportFormat.html:
        return built.snapshot.get_html_str(as_iframe=False).encode()
    # The snapshot's dict() holds enums json cannot write; its json() is the same, written.
    evidently = json.loads(built.snapshot.json())
    body = {**header, "metrics": built.metrics, "evidently": evidently}
    return json.dumps(plain(body), allow_nan=False).encode()


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python values, NaN and infinity as null."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _target(use_case: UseCase) -> str:
    if use_case.target is None:
        raise errors.InvalidInput(f"use case {use_case.name!r} has no target column")
    return use_case.target.name


def _with_target(use_case: UseCase, roles: dict[str, Role]) -> dict[str, Role]:
    if use_case.target is None:
        return roles
    return {**roles, use_case.target.name: label_role(use_case)}


def _stats(values: pd.Series, role: Role) -> dict[str, Any]:
    present = values.dropna()
    out: dict[str, Any] = {"missing_share": 1 - len(present) / len(values) if len(values) else 0}
    if role is Role.numerical:
        numbers = present.astype(float)
        described = {k: numbers.agg(k) for k in ("mean", "std", "min", "max")}
        return {**out, **{k: None if present.empty else float(v) for k, v in described.items()}}
    shares = present.value_counts(normalize=True).head(10)
    return {**out, "unique": int(present.nunique()), "top_shares": shares.to_dict()}


def _change(
    realised: dict[str, float | None], reference: dict[str, float | None] | None
) -> dict[str, float | None] | None:
    """Realised minus reference, per metric."""
    if reference is None:
        return None
    out: dict[str, float | None] = {}
    for name, value in realised.items():
        base = reference.get(name)
        out[name] = None if value is None or base is None else value - base
    return out
