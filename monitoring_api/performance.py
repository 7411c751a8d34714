"""Model performance computed directly with scikit-learn, the same way for the reports'
summaries, the metric history and the performance-drop check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn import metrics

from gits_common.schemas import Task
from monitoring_api.frames import class_array

# What the history records for each task, and the metric a performance drop is judged
# on, with whether higher is better.
HISTORY_METRICS = {Task.regression: ("mae", "rmse", "r2"), Task.classification: ("accuracy", "f1")}
PRIMARY = {Task.regression: ("mae", False), Task.classification: ("accuracy", True)}


def regression(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float | None]:
    """MAE, RMSE, R2 and MAPE (in percent) of numeric predictions."""
    truth, predicted = y_true.to_numpy(float), y_pred.to_numpy(float)
    nonzero = truth != 0
    return {
        "mae": float(metrics.mean_absolute_error(truth, predicted)),
        "rmse": math.sqrt(metrics.mean_squared_error(truth, predicted)),
        # R2 is undefined for one row; say so instead of sklearn's warning and NaN.
        "r2": float(metrics.r2_score(truth, predicted)) if len(truth) > 1 else None,
        "mape_percent": float(
            np.mean(np.abs((truth[nonzero] - predicted[nonzero]) / truth[nonzero])) * 100
        )
        if nonzero.any()
        else None,
    }


def classification(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float | None]:
    """Accuracy, and precision, recall and F1 averaged over the classes (macro), of
    labels of the use case's type (frames.typed: the label 1 equals the prediction 1,
    and the text "1" is no int 1)."""
    truth, predicted = class_array(y_true), class_array(y_pred)
    options = {"average": "macro", "zero_division": 0}
    return {
        "accuracy": float(metrics.accuracy_score(truth, predicted)),
        "precision": float(metrics.precision_score(truth, predicted, **options)),
        "recall": float(metrics.recall_score(truth, predicted, **options)),
        "f1": float(metrics.f1_score(truth, predicted, **options)),
    }


def evaluate(task: Task, y_true: pd.Series, y_pred: pd.Series) -> dict[str, float | None]:
    """The task's metrics of predictions against the truth."""
    if task is Task.regression:
        return regression(y_true, y_pred)
    return classification(y_true, y_pred)


def dropped(task: Task, realised: float, reference: float, drop: float) -> float | None:
    """The boundary realised performance crossed, when it is `drop` (relative) worse
    than on the reference; None when it is not."""
    _, higher_is_better = PRIMARY[task]
    if higher_is_better:
        boundary = reference * (1 - drop)
        return boundary if realised < boundary else None
    boundary = reference * (1 + drop)
    return boundary if realised > boundary else None
