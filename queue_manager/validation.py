"""What an uploaded model file must do before queue_manager stores it, as plain
functions: it loads, it names the features it reads and the use case has them, and it
predicts, on a few rows of the use case, values of the kind its task promises. The
checks run inside the sandbox (queue_manager.sandbox), never in the API process."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from gits_common.registry import ModelCheck
from gits_common.schemas import ColumnType, UseCase
from gits_ml import modeling
from gits_ml.modeling import ModelFailed

# Rows a model is tried on: enough to catch a model that fails on real data, few enough
# to keep an upload quick.
SAMPLE_ROWS = 20
# Values a feature takes in rows made from the schema, when the training table is empty.
SCHEMA_VALUES: dict[ColumnType, list[Any]] = {
    ColumnType.float: [0.0, 1.0, -1.0, 0.5, 100.0],
    ColumnType.int: [0, 1, 2, -1, 100],
    ColumnType.bool: [False, True, True, False, True],
    ColumnType.text: ["a", "b", "c", "a", "b"],
}


def schema_rows(use_case: UseCase) -> list[dict[str, Any]]:
    """A few rows of the use case's features made from their types alone, for a use
    case whose training table is still empty."""
    count = len(SCHEMA_VALUES[ColumnType.float])
    return [{c.name: SCHEMA_VALUES[c.type][i] for c in use_case.features} for i in range(count)]


def check_model(
    content: bytes, use_case: UseCase, rows: list[dict[str, Any]], *, rows_from: str
) -> ModelCheck:
    """What the model file is, or `ModelFailed` naming the first check it fails.

    `rows` hold (at least) the use case's features; the model predicts all of them.
    """
    started = time.monotonic()
    pipeline = modeling.from_bytes(content)
    target = use_case.target.name if use_case.target is not None else None
    features = modeling.feature_names(pipeline, target)
    unknown = [f for f in features if f not in use_case.feature_names]
    if unknown:
        raise ModelFailed(
            "features",
            f"the model reads {unknown}, which use case {use_case.name!r} does not have "
            f"(its features: {use_case.feature_names})",
        )
    frame = pd.DataFrame.from_records(rows, columns=use_case.feature_names)[features]
    label_type = modeling.prediction_type(use_case)
    predictions = modeling.predict(pipeline, frame, task=use_case.task, label_type=label_type)
    return ModelCheck(
        features=features,
        output=_describe(predictions.labels, use_case),
        rows=len(frame),
        rows_from=rows_from,
        seconds=round(time.monotonic() - started, 3),
    )


def _describe(labels: list[Any], use_case: UseCase) -> str:
    if use_case.task.value == "regression":
        return f"numbers from {min(labels):.4g} to {max(labels):.4g}"
    seen = sorted({repr(v) for v in labels})
    return f"{modeling.prediction_type(use_case).value} labels {', '.join(seen[:10])}"
