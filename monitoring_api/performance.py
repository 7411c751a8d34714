"""Model performance computed directly with scikit-learn, the same way for the reports'
summaries, the metric history and the performance-drop check."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics

from gits_common.monitoring import ANOMALY_RATE
from gits_common.schemas import Task
from monitoring_api.frames import PREDICTION, PREDICTION_SCORE, class_array

# What the history records for each task, and the metric a performance drop is judged
# on, with whether higher is better. Classification's precision, recall and F1 are macro
# over the classes, its ROC AUC binary only; an anomaly use case's are of the flag 1.
HISTORY_METRICS = {
    Task.regression: ("mae", "rmse", "r2"),
    Task.classification: ("accuracy", "precision", "recall", "f1", "roc_auc"),
    Task.anomaly: ("precision", "recall", "f1", ANOMALY_RATE),
}
PRIMARY = {
    Task.regression: ("mae", False),
    Task.classification: ("accuracy", True),
    Task.anomaly: ("f1", True),
}
ANOMALY = 1  # the flag, and the true label, of an anomaly (0: normal)


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


def anomaly(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float | None]:
    """Precision, recall and F1 of anomaly flags (1 anomaly, 0 normal) against the
    known labels (of the same 0/1), each 0 where undefined (no flag, no anomaly)."""
    truth = np.asarray(y_true.tolist()) == ANOMALY
    flagged = np.asarray(y_pred.tolist()) == ANOMALY
    options = {"zero_division": 0}
    return {
        "precision": float(metrics.precision_score(truth, flagged, **options)),
        "recall": float(metrics.recall_score(truth, flagged, **options)),
        "f1": float(metrics.f1_score(truth, flagged, **options)),
    }


def evaluate(task: Task, y_true: pd.Series, y_pred: pd.Series) -> dict[str, float | None]:
    """The task's metrics of predictions against the truth."""
    if task is Task.regression:
        return regression(y_true, y_pred)
    if task is Task.anomaly:
        return anomaly(y_true, y_pred)
    return classification(y_true, y_pred)


def flag_rate(flags: pd.Series) -> float | None:
    """The share of anomaly flags among the predictions given (missing ones left out),
    in 0..1; None when there is none."""
    present = flags.dropna()
    return float((np.asarray(present.tolist()) == ANOMALY).mean()) if len(present) else None


def positive_class(reference_target: pd.Series) -> Any | None:
    """The positive class of a binary classification: the minority class of the
    reference table's target (the rarer outcome is the one precision and recall are
    about: off-spec, fraud, failure); on a tie, the greater label. None when the
    reference does not hold exactly two classes."""
    counts = reference_target.dropna().value_counts()
    if len(counts) != 2:
        return None
    fewest = counts[counts == counts.min()].index.tolist()
    return max(fewest, key=lambda label: class_array(pd.Series([label], dtype=object))[0])


def positive_probability(predicted: pd.Series, confidence: np.ndarray, positive: Any) -> np.ndarray:
    """The probability of the positive class of a binary classifier, from the predicted
    labels (n) and the probability of each predicted label (n floats in [0, 1], a
    production row's `prediction_score`): p where the positive class was predicted,
    1 - p where the other was."""
    is_positive = class_array(predicted) == class_array(pd.Series([positive], dtype=object))[0]
    scores = np.asarray(confidence, dtype=float)
    return np.where(is_positive, scores, 1.0 - scores)


def roc_auc(truth: pd.Series, probability: np.ndarray, positive: Any) -> tuple[float | None, str]:
    """The binary ROC AUC of the positive-class probabilities (n) against the true
    labels (n), or None and why: both classes must be among the labels."""
    is_positive = class_array(truth) == class_array(pd.Series([positive], dtype=object))[0]
    if is_positive.all() or not is_positive.any():
        return None, "ROC AUC needs labelled rows of both classes; the window has one"
    return float(metrics.roc_auc_score(is_positive, probability)), ""


def scored_auc(
    done: pd.DataFrame, target: str, positive: Any | None
) -> tuple[float | None, str | None]:
    """The binary ROC AUC of labelled rows (`target`, `prediction` and
    `prediction_score`, the probability of the predicted label), or None and why: only
    binary classifications have one (`positive` set) here, since production rows keep
    the probability of the predicted label alone, not every class's."""
    if positive is None:
        return None, (
            "ROC AUC is computed for binary classification only: the production rows keep "
            "the probability of the predicted label alone, not every class's"
        )
    rows = done[done[PREDICTION_SCORE].notna()] if PREDICTION_SCORE in done else done.iloc[0:0]
    if rows.empty:
        return None, "no labelled row of the window has a prediction_score"
    probability = positive_probability(
        rows[PREDICTION], rows[PREDICTION_SCORE].to_numpy(float), positive
    )
    value, reason = roc_auc(rows[target], probability, positive)
    return value, reason or None


def per_class(y_true: pd.Series, y_pred: pd.Series) -> tuple[list[Any], dict[str, np.ndarray]]:
    """Every class among the truth and the predictions (as frames.classes codes them,
    sorted), with each class's precision, recall, F1 (one-vs-rest, 0 where undefined),
    support and the confusion matrix (rows: truth, columns: prediction, in that order)."""
    truth, predicted = class_array(y_true), class_array(y_pred)
    if len(truth) == 0:
        nothing = np.zeros(0)
        found = {"precision": nothing, "recall": nothing, "f1": nothing, "support": nothing}
        return [], {**found, "confusion": np.zeros((0, 0), dtype=int)}
    labels = np.unique(np.concatenate([truth, predicted]))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    confusion = metrics.confusion_matrix(truth, predicted, labels=labels)
    found = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return labels.tolist(), {**found, "confusion": confusion}


def dropped(task: Task, realised: float, reference: float, drop: float) -> float | None:
    """The boundary realised performance crossed, when it is `drop` (relative) worse
    than on the reference; None when it is not."""
    _, higher_is_better = PRIMARY[task]
    if higher_is_better:
        boundary = reference * (1 - drop)
        return boundary if realised < boundary else None
    boundary = reference * (1 + drop)
    return boundary if realised > boundary else None
