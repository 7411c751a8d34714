"""Performance estimated before the labels arrive, from the model's own outputs: the two
methods NannyML publishes, written here because NannyML does not install beside our
stack (nannyml 0.13 pins kaleido<0.3 and lightgbm<4.6, and pulls segment-analytics
telemetry, s3fs, gcsfs and FLAML; older versions pin Jinja2<3.1).

- CBPE, confidence-based performance estimation (classification): NannyML, "Estimation
  of Performance of Classification Models", https://nannyml.readthedocs.io/en/stable/
  how_it_works/performance_estimation.html#confidence-based-performance-estimation-cbpe
- DLE, direct loss estimation (regression): NannyML, same page,
  #direct-loss-estimation-dle

Both assume no concept drift: the relation between the features and the target is the
reference's; covariate shift is what they see. Blocking (scikit-learn): call in a thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression
from threadpoolctl import threadpool_limits

from gits_common.schemas import Task, UseCase
from monitoring_api import performance
from monitoring_api.frames import PREDICTION, PREDICTION_SCORE, Role, class_array, feature_roles

CBPE_NAME = "CBPE"
DLE_NAME = "DLE"
# What each method estimates; CBPE's precision, recall and F1 are macro over the two
# classes, as the realised ones (performance.classification), and binary only.
ESTIMATED = {
    Task.classification: ("accuracy", "precision", "recall", "f1"),
    Task.regression: ("mae", "rmse"),
}
SEED = 0


def _isotonic(scores: np.ndarray, outcome: np.ndarray) -> IsotonicRegression:
    """A monotone map of scores (n floats) to the probability of the outcome (n of 0/1),
    clipped to [0, 1] and constant beyond the scores seen."""
    calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    return calibrator.fit(np.asarray(scores, dtype=float), np.asarray(outcome, dtype=float))


@dataclass(frozen=True)
class CBPE:
    """Confidence-based performance estimation, fitted on reference rows whose truth is
    known. Binary (`positive` set): the probability of the positive class is calibrated
    on the reference (isotonic regression of truth == positive on it, NannyML's way),
    and each row of a window adds its calibrated p to the expected confusion matrix
    (predicted positive: p true positive, 1 - p false positive; predicted negative: p
    false negative, 1 - p true negative), from which accuracy and macro precision,
    recall and F1 follow. Multiclass (`positive` None): the probability of the predicted
    label is calibrated on whether the prediction was right, and the expected accuracy
    is the mean calibrated probability; the rows keep no other class's probability, so
    precision, recall and F1 are not estimated."""

    positive: Any | None
    calibrator: IsotonicRegression
    reference: dict[str, float | None]

    @classmethod
    def fit(
        cls, truth: pd.Series, predicted: pd.Series, confidence: np.ndarray, positive: Any | None
    ) -> CBPE:
        """Fit on n reference rows: true labels, predicted labels and the probability of
        each predicted label (floats in [0, 1]). Raises ValueError for no rows or
        lengths that differ."""
        _check_lengths(truth, predicted, confidence)
        if positive is not None:
            probability = performance.positive_probability(predicted, confidence, positive)
            outcome = class_array(truth) == _code(positive)
            calibrator = _isotonic(probability, outcome)
        else:
            calibrator = _isotonic(confidence, class_array(truth) == class_array(predicted))
        realised = performance.classification(truth, predicted)
        reference = {name: realised.get(name) for name in ESTIMATED[Task.classification]}
        return cls(positive, calibrator, reference)

    def estimate(self, predicted: pd.Series, confidence: np.ndarray) -> dict[str, float | None]:
        """Expected accuracy, and for binary macro precision, recall and F1, of n rows
        (predicted labels and the probability of each); all None for no rows, a
        class's score 0 where its expected denominator is 0."""
        return self.combine(self.parts(predicted, confidence))

    def parts(self, predicted: pd.Series, confidence: np.ndarray) -> np.ndarray:
        """Each row's share of the estimate, summed over any rows by `combine`: binary,
        n x 4 expected counts (TN, FP, FN, TP) from the calibrated positive-class
        probability p (predicted positive: p true positive, 1 - p false positive;
        predicted negative: p false negative, 1 - p true negative); multiclass, n x 1
        calibrated probabilities that the prediction is right."""
        scores = np.asarray(confidence, dtype=float)
        if len(scores) == 0:
            return np.empty((0, 1 if self.positive is None else 4))
        if self.positive is None:
            return self.calibrator.predict(scores).reshape(-1, 1)
        probability = performance.positive_probability(predicted, scores, self.positive)
        p = self.calibrator.predict(probability)
        said = class_array(predicted) == _code(self.positive)
        none = np.zeros_like(p)
        tn, fp = np.where(said, none, 1 - p), np.where(said, 1 - p, none)
        fn, tp = np.where(said, none, p), np.where(said, p, none)
        return np.column_stack([tn, fp, fn, tp])

    def combine(self, parts: np.ndarray) -> dict[str, float | None]:
        """The metrics of the rows whose `parts` these are (any subset, any order)."""
        if len(parts) == 0:
            return dict.fromkeys(ESTIMATED[Task.classification])
        if self.positive is None:
            accuracy = float(np.mean(parts))
            return {"accuracy": accuracy, "precision": None, "recall": None, "f1": None}
        return expected_scores(parts.sum(axis=0).reshape(2, 2))


def expected_scores(confusion: np.ndarray) -> dict[str, float | None]:
    """Accuracy and macro precision, recall and F1 of a 2 x 2 confusion matrix [[TN, FP],
    [FN, TP]] of (expected) counts; a class's score is 0 where its denominator is 0, as
    scikit-learn's zero_division=0, and all are None for an empty matrix."""
    total = float(confusion.sum())
    if total <= 0:
        return dict.fromkeys(ESTIMATED[Task.classification])
    scores: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    for k in (0, 1):  # each class in turn as the positive one
        hits, said, truly = confusion[k, k], confusion[:, k].sum(), confusion[k, :].sum()
        scores["precision"].append(_ratio(hits, said))
        scores["recall"].append(_ratio(hits, truly))
        scores["f1"].append(_ratio(2 * hits, said + truly))
    macro = {name: float(np.mean(values)) for name, values in scores.items()}
    return {"accuracy": float(np.trace(confusion) / total), **macro}


@dataclass(frozen=True)
class DLE:
    """Direct loss estimation: two gradient-boosted trees (scikit-learn's
    HistGradientBoostingRegressor, as NannyML uses LightGBM) fitted on reference rows to
    predict the absolute error |y - ŷ| and the squared error (y - ŷ)² from the features
    and the prediction. A window's estimated MAE is the mean predicted absolute error,
    its RMSE the root of the mean predicted squared error (both in the target's unit),
    predictions clipped at 0."""

    features: list[str]
    categorical: list[str]
    absolute: HistGradientBoostingRegressor
    squared: HistGradientBoostingRegressor
    reference: dict[str, float | None]

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        truth: pd.Series,
        predicted: pd.Series,
        *,
        features: list[str],
        categorical: list[str],
    ) -> DLE:
        """Fit on n reference rows: their features (`categorical` the label-like ones)
        and their true and predicted values (floats). Raises ValueError for no rows or
        lengths that differ."""
        _check_lengths(truth, predicted, frame)
        error = truth.to_numpy(float) - predicted.to_numpy(float)
        inputs = _inputs(frame, predicted, features, categorical)
        # One OpenMP thread: the fit runs in a thread of the service beside others, and
        # OpenMP's spinning threads contending with them made it 5-7 times slower.
        with threadpool_limits(limits=1, user_api="openmp"):
            absolute = _booster().fit(inputs, np.abs(error))
            squared = _booster().fit(inputs, error**2)
        realised = performance.regression(truth, predicted)
        reference = {name: realised[name] for name in ESTIMATED[Task.regression]}
        return cls(features, categorical, absolute, squared, reference)

    def estimate(self, frame: pd.DataFrame, predicted: pd.Series) -> dict[str, float | None]:
        """Estimated MAE and RMSE of n rows (their features and predictions); None for
        no rows."""
        return self.combine(self.parts(frame, predicted))

    def parts(self, frame: pd.DataFrame, predicted: pd.Series) -> np.ndarray:
        """Each row's predicted absolute and squared error (n x 2, clipped at 0)."""
        if len(frame) == 0:
            return np.empty((0, 2))
        inputs = _inputs(frame, predicted, self.features, self.categorical)
        with threadpool_limits(limits=1, user_api="openmp"):
            absolute = np.clip(self.absolute.predict(inputs), 0, None)
            squared = np.clip(self.squared.predict(inputs), 0, None)
        return np.column_stack([absolute, squared])

    def combine(self, parts: np.ndarray) -> dict[str, float | None]:
        """MAE and RMSE of the rows whose `parts` these are (any subset, any order)."""
        if len(parts) == 0:
            return dict.fromkeys(ESTIMATED[Task.regression])
        mae, squared = np.mean(parts, axis=0)
        return {"mae": float(mae), "rmse": math.sqrt(float(squared))}


PREDICTED = "__prediction__"  # the prediction among DLE's inputs, apart from any feature


def _inputs(
    frame: pd.DataFrame, predicted: pd.Series, features: list[str], categorical: list[str]
) -> pd.DataFrame:
    """DLE's inputs: the features (labels as pandas categories of their texts, which the
    booster splits on as categories) and the prediction, by position."""
    inputs = pd.DataFrame(
        {
            name: (
                frame[name].astype(str).astype("category")
                if name in categorical
                else pd.to_numeric(frame[name]).astype(float)
            )
            for name in features
        }
    ).reset_index(drop=True)
    inputs[PREDICTED] = predicted.to_numpy(float)
    return inputs


def _booster() -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        categorical_features="from_dtype",
        early_stopping=True,
        n_iter_no_change=30,
        random_state=SEED,
    )


def _check_lengths(first: Any, *others: Any) -> None:
    rows = len(first)
    if rows == 0:
        raise ValueError("an estimator needs reference rows; there are none")
    if any(len(other) != rows for other in others):
        raise ValueError("the reference's truth, predictions and scores differ in length")


def _code(label: Any) -> Any:
    return class_array(pd.Series([label], dtype=object))[0]


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


@dataclass(frozen=True)
class Estimator:
    """A fitted CBPE or DLE, what it was fitted on, and how it reads production rows
    (frames.to_frame: `prediction`, `prediction_score` and the features)."""

    method: str  # CBPE_NAME or DLE_NAME
    fitted: CBPE | DLE
    table: str  # the reference table it was fitted on
    rows: int  # the reference rows it was fitted on

    def usable(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows it can estimate: with a prediction, and for CBPE its probability."""
        if frame.empty or PREDICTION not in frame:
            return frame.iloc[0:0]
        keep = frame[PREDICTION].notna()
        if self.method == CBPE_NAME:
            if PREDICTION_SCORE not in frame:
                return frame.iloc[0:0]
            keep &= frame[PREDICTION_SCORE].notna()
        return frame[keep]

    def parts(self, frame: pd.DataFrame) -> np.ndarray:
        """Each usable row's share of the estimate (`usable` rows, in order)."""
        rows = self.usable(frame)
        if isinstance(self.fitted, CBPE):
            return self.fitted.parts(rows[PREDICTION], rows[PREDICTION_SCORE].to_numpy(float))
        return self.fitted.parts(rows, rows[PREDICTION])

    def combine(self, parts: np.ndarray) -> dict[str, float | None]:
        """The estimated metrics of the rows whose parts these are."""
        return self.fitted.combine(parts)

    def estimate(self, frame: pd.DataFrame) -> dict[str, float | None]:
        """The estimated metrics of a window's usable rows."""
        return self.combine(self.parts(frame))


def fit(
    use_case: UseCase,
    reference: pd.DataFrame,
    predicted: pd.Series,
    confidence: pd.Series,
    *,
    features: list[str],
    table: str,
) -> Estimator:
    """The task's estimator fitted on reference rows (n, their truth known) and the
    bound model's predictions on them and scores (`prediction_score` as a worker stores
    it; unused for regression), `features` the columns the model reads. CBPE for
    classification (binary when the reference holds two classes: performance.positive_class
    is its positive one), DLE for regression. Raises ValueError for an anomaly use case,
    no target or no usable reference row."""
    if use_case.target is None or use_case.task not in ESTIMATED:
        raise ValueError(f"no estimator for a {use_case.task.value} use case")
    target = use_case.target.name
    usable = reference[target].notna() & predicted.notna()
    if use_case.task is Task.classification:
        usable &= confidence.notna()
    rows, said, scores = reference[usable], predicted[usable], confidence[usable]
    fitted: CBPE | DLE
    if use_case.task is Task.classification:
        positive = performance.positive_class(rows[target])
        fitted = CBPE.fit(rows[target], said, scores.to_numpy(float), positive)
        return Estimator(CBPE_NAME, fitted, table, len(rows))
    categorical = [
        name for name, role in feature_roles(use_case).items() if role is Role.categorical
    ]
    fitted = DLE.fit(
        rows,
        rows[target].astype(float),
        said.astype(float),
        features=features,
        categorical=[name for name in features if name in categorical],
    )
    return Estimator(DLE_NAME, fitted, table, len(rows))
