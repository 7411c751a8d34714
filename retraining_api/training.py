"""Retraining as plain functions over DataFrames: train a challenger with PyCaret, then
score it and the champion on the same held-out rows with PyCaret's own metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gits_common import errors, modeling
from gits_common.schemas import Task, UseCase

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]

# PyCaret 3.3's model ids (xgboost is not installed); anything else would fail in the job.
# fmt: off
MODEL_IDS = {
    Task.regression: frozenset({
        "lr", "lasso", "ridge", "en", "lar", "llar", "omp", "br", "ard", "par", "ransac", "tr",
        "huber", "kr", "svm", "knn", "dt", "rf", "et", "ada", "gbr", "mlp", "lightgbm",
        "catboost", "dummy",
    }),
    Task.classification: frozenset({
        "lr", "knn", "nb", "dt", "svm", "rbfsvm", "gpc", "mlp", "ridge", "rf", "qda", "ada",
        "gbc", "lda", "et", "lightgbm", "catboost", "dummy",
    }),
}
# fmt: on
# PyCaret's metric names, and whether higher is better.
METRICS = {
    Task.regression: {
        "MAE": False,
        "MSE": False,
        "RMSE": False,
        "R2": True,
        "RMSLE": False,
        "MAPE": False,
    },
    Task.classification: {
        "Accuracy": True,
        "AUC": True,
        "Recall": True,
        "Prec.": True,
        "F1": True,
        "Kappa": True,
        "MCC": True,
    },
}
DEFAULT_METRIC = {Task.regression: "R2", Task.classification: "Accuracy"}


@dataclass(frozen=True)
class Choice:
    """What a retraining job compares and selects on."""

    models: list[str]
    metric: str
    higher_is_better: bool


def choose(task: Task, models: list[str] | None, metric: str | None, default: list[str]) -> Choice:
    """The models and metric of a request, or `InvalidInput` naming what is wrong."""
    if task not in METRICS:
        raise errors.InvalidInput(f"retraining supports regression and classification, not {task}")
    wanted = list(dict.fromkeys(models or [m for m in default if m in MODEL_IDS[task]]))
    unknown = sorted(set(wanted) - MODEL_IDS[task])
    if unknown:
        known = ", ".join(sorted(MODEL_IDS[task]))
        raise errors.InvalidInput(f"unknown {task} model ids {unknown}; PyCaret offers {known}")
    metric = metric or DEFAULT_METRIC[task]
    if metric not in METRICS[task]:
        names = ", ".join(METRICS[task])
        raise errors.InvalidInput(f"unknown {task} metric {metric!r}; choose one of {names}")
    return Choice(models=wanted, metric=metric, higher_is_better=METRICS[task][metric])


@dataclass(frozen=True)
class Outcome:
    """A trained challenger and both models' scores on the held-out rows."""

    challenger: Any
    challenger_results: dict[str, Any]
    champion_results: dict[str, Any] | None
    leaderboard: list[dict[str, Any]]


def retrain(
    use_case: UseCase,
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    champion: Any | None,
    choice: Choice,
    fold: int,
    n_jobs: int,
    budget_seconds: float | None,
    progress: Progress,
) -> Outcome:
    """Train the best of the chosen models on `training`; score it and the champion."""
    progress("setting up the experiment", 15)
    setup = modeling.experiment(use_case, training, fold=fold, n_jobs=n_jobs)
    progress(f"comparing {len(choice.models)} models", 25)
    challenger, board = modeling.best_model(
        setup,
        use_case.task,
        include=choice.models,
        fold=fold,
        sort=choice.metric,
        budget_minutes=budget_seconds / 60 if budget_seconds else None,
    )
    progress("scoring challenger and champion on the held-out rows", 85)
    return Outcome(
        challenger=challenger,
        challenger_results=score(setup, challenger, holdout, use_case),
        champion_results=score(setup, champion, holdout, use_case) if champion else None,
        leaderboard=_records(board),
    )


def score(setup: Any, pipeline: Any, holdout: pd.DataFrame, use_case: UseCase) -> dict[str, Any]:
    """The original's result block: the model's name and PyCaret's metrics on `holdout`."""
    assert use_case.target is not None  # choose() admits only supervised tasks
    features, truth = holdout[use_case.feature_names], holdout[use_case.target.name]
    predicted = pipeline.predict(features)
    results: dict[str, Any] = {"Model": _model_name(setup, pipeline)}
    for _, metric in setup.get_metrics().iterrows():
        name = metric["Display Name"]
        if name not in METRICS[use_case.task]:
            continue
        try:
            values = (
                _probabilities(pipeline, features)
                if metric["Target"] == "pred_proba"
                else (predicted)
            )
            value = float(metric["Score Function"](truth, values, **metric["Args"]))
            results[name] = round(value, 4) if np.isfinite(value) else None
        except Exception as exc:  # e.g. AUC of a model without probabilities
            log.info("metric %s not computed for %s: %r", name, results["Model"], exc)
            results[name] = None
    return results


def better(choice: Choice, challenger: float | None, champion: float | None, margin: float) -> bool:
    """Whether the challenger beats the champion on the metric by `margin` (relative)."""
    if challenger is None:
        return False
    if champion is None:
        return True
    step = margin * abs(champion)
    if choice.higher_is_better:
        return challenger >= champion + step and challenger > champion
    return challenger <= champion - step and challenger < champion


def _probabilities(pipeline: Any, features: pd.DataFrame) -> Any:
    probabilities = pipeline.predict_proba(features)
    return probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities


def _model_name(setup: Any, pipeline: Any) -> str:
    estimator = modeling.final_estimator(pipeline)
    try:
        return str(setup._get_model_name(estimator))  # PyCaret's display name, as in its tables
    except Exception:
        return type(estimator).__name__


def _records(board: pd.DataFrame) -> list[dict[str, Any]]:
    table = board.reset_index(names="id").replace({np.nan: None})
    return [
        {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
        for row in table.to_dict("records")
    ]
