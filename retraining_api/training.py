"""Retraining as plain functions over DataFrames: check that the data can give a
meaningful result, train a challenger with PyCaret, score it and the champion on the same
held-out rows with PyCaret's own metrics, and decide whether the challenger wins."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from gits_common import errors
from gits_common.schemas import Task, UseCase
from gits_ml import modeling

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
# R2 is 1 - SS_res / SS_tot: on held-out rows whose target never varies SS_tot is 0, and
# sklearn's r2_score then answers 1.0 or 0.0 (force_finite), a number that means nothing.
UNDEFINED_ON_CONSTANT_TARGET = frozenset({"R2"})
HOLDOUT = "the held-out rows (testing table and newest labelled production rows)"


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
        raise errors.InvalidInput(
            f"models: unknown {task} model ids {unknown}; PyCaret offers {known}"
        )
    metric = metric or DEFAULT_METRIC[task]
    if metric not in METRICS[task]:
        names = ", ".join(METRICS[task])
        raise errors.InvalidInput(
            f"metric: unknown {task} metric {metric!r}; choose one of {names}"
        )
    return Choice(models=wanted, metric=metric, higher_is_better=METRICS[task][metric])


# --- What data can give a meaningful result ---


def min_rows_per_class(fold: int) -> int:
    """Rows each class needs to be cross-validated in `fold` folds. PyCaret's setup keeps
    30% of each class for its own test split (train_size 0.7, stratified) and
    cross-validates the rest in stratified folds, which need `fold` rows of every class;
    2 x fold rows always leave that many after the split (sklearn's StratifiedKFold and
    train_test_split)."""
    return 2 * fold


def class_counts(labels: pd.Series) -> dict[str, int]:
    """Rows per class, by the class's name."""
    counts = labels.astype(str).value_counts()
    return {name: int(counts[name]) for name in sorted(counts.index)}


def check_data(
    use_case: UseCase, training: pd.DataFrame, holdout: pd.DataFrame, *, fold: int
) -> None:
    """Refuse data on which retraining would report a meaningless result: raises
    `errors.InvalidInput` giving the counts and what is needed. Classification needs at
    least 2 classes in the training rows, each with `min_rows_per_class(fold)` rows, and
    at least 2 classes in the held-out rows (on one class AUC is undefined and the other
    metrics cannot tell models apart); regression needs a target that varies in the
    training rows. `training` and `holdout` hold the target column, without missing values."""
    assert use_case.target is not None  # choose() admits only supervised tasks
    target = use_case.target.name
    if holdout.empty:
        raise errors.InvalidInput(f"{HOLDOUT} are empty: both models need rows to be scored on")
    if use_case.task is Task.classification:
        _check_training_classes(training[target], target, fold)
        held = class_counts(holdout[target])
        if len(held) < 2:
            raise errors.InvalidInput(
                f"{HOLDOUT} hold a single class of {target}: {held}; on one class AUC is "
                "undefined and Accuracy, Recall, Prec., F1, Kappa and MCC cannot tell models "
                "apart, so the held-out rows need at least 2 classes"
            )
    elif training[target].nunique() < 2:
        value = training[target].iloc[0] if len(training) else None
        raise errors.InvalidInput(
            f"the training rows' {target} is {value} in all {len(training)} rows: there is "
            "nothing to learn; at least 2 distinct values are needed"
        )


def _check_training_classes(labels: pd.Series, target: str, fold: int) -> None:
    counts, needed = class_counts(labels), min_rows_per_class(fold)
    why = (
        f"2 x RETRAINING_FOLD {fold}: PyCaret keeps 30% of each class for its own test split "
        f"and cross-validates the rest in {fold} stratified folds"
    )
    if len(counts) < 2:
        raise errors.InvalidInput(
            f"the training rows hold a single class of {target}: {counts}; a classifier needs "
            f"at least 2 classes, each with at least {needed} rows ({why})"
        )
    short = [name for name, count in counts.items() if count < needed]
    if short:
        raise errors.InvalidInput(
            f"too few training rows of class {', '.join(map(repr, short))} of {target} to "
            f"cross-validate: class counts {counts}; every class needs at least {needed} rows "
            f"({why})"
        )


# --- Training and scoring ---


@dataclass(frozen=True)
class Champion:
    """The model a service uses now: loaded, or why it could not be."""

    label: str  # "<algorithm>:<version>", as production rows name it
    pipeline: Any | None
    error: str | None = None


@dataclass(frozen=True)
class Scores:
    """One model's result block on the held-out rows, and why any metric is missing."""

    results: dict[str, Any]  # the original's block: "Model", then each metric or None
    missing: dict[str, str] = field(default_factory=dict)  # metric -> why not computed
    error: str | None = None  # why the model could not be scored at all


@dataclass(frozen=True)
class Outcome:
    """A trained challenger and both models' scores on the held-out rows."""

    challenger: Any
    challenger_scores: Scores
    champion_scores: Scores | None  # None: the service has no champion
    leaderboard: list[dict[str, Any]]


def retrain(
    use_case: UseCase,
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    champion: Champion | None,
    choice: Choice,
    fold: int,
    n_jobs: int,
    budget_seconds: float | None,
    progress: Progress,
) -> Outcome:
    """Train the best of the chosen models on `training`; score it and the champion.
    Raises `errors.InvalidInput` (from `check_data`) before training on data that could
    only give a meaningless result."""
    check_data(use_case, training, holdout, fold=fold)
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
        challenger_scores=score(setup, challenger, holdout, use_case),
        champion_scores=score_champion(setup, champion, holdout, use_case) if champion else None,
        leaderboard=_records(board),
    )


def score(setup: Any, pipeline: Any, holdout: pd.DataFrame, use_case: UseCase) -> Scores:
    """The original's result block: the model's name and PyCaret's metrics on `holdout`;
    a metric that cannot be computed, or is undefined on these rows, is None and its
    reason is in `missing`. Raises what the model's `predict` raises."""
    assert use_case.target is not None  # choose() admits only supervised tasks
    features, truth = holdout[use_case.feature_names], holdout[use_case.target.name]
    predicted = pipeline.predict(features)
    results: dict[str, Any] = {"Model": _model_name(setup, pipeline)}
    missing: dict[str, str] = {}
    for _, metric in setup.get_metrics().iterrows():
        name = metric["Display Name"]
        if name not in METRICS[use_case.task]:
            continue
        results[name] = None
        if name in UNDEFINED_ON_CONSTANT_TARGET and truth.nunique() < 2:
            missing[name] = "undefined: the held-out target is constant"
            continue
        try:
            values = (
                _probabilities(pipeline, features)
                if metric["Target"] == "pred_proba"
                else predicted
            )
            value = float(metric["Score Function"](truth, values, **metric["Args"]))
        except Exception as exc:  # e.g. AUC of a model without probabilities
            log.info("metric %s not computed for %s: %r", name, results["Model"], exc)
            missing[name] = f"{type(exc).__name__}: {exc}"
            continue
        if math.isfinite(value):
            results[name] = round(value, 4)
        else:
            missing[name] = f"not a finite number ({value})"
    return Scores(results, missing)


def score_champion(
    setup: Any, champion: Champion, holdout: pd.DataFrame, use_case: UseCase
) -> Scores:
    """The champion's scores; one that did not load or cannot predict gets an empty block
    and the reason in `error`, never a failed job."""
    error = champion.error
    if champion.pipeline is not None:
        try:
            return score(setup, champion.pipeline, holdout, use_case)
        except Exception as exc:  # a broken model must not cost the challenger's result
            log.warning("champion %s could not be scored: %r", champion.label, exc)
            error = f"could not predict the held-out rows: {type(exc).__name__}: {exc}"
    empty = dict.fromkeys(METRICS[use_case.task])
    return Scores({"Model": champion.label, **empty}, error=error or "not loaded")


# --- Deciding ---


def better(choice: Choice, challenger: float | None, champion: float | None, margin: float) -> bool:
    """Whether the challenger beats the champion on the choice's metric: strictly better,
    and by at least `margin` x |champion| (a relative margin). A negative champion (R2,
    Kappa or MCC below 0) is measured by its size; of a zero champion a relative margin
    asks nothing, so any strict improvement wins. False when either value is missing or
    not finite: no comparison is no win. The values are compared exactly as the decimals
    they are shown as (metrics are rounded to 4 places), so float rounding never decides
    at the margin."""
    if challenger is None or champion is None:
        return False
    if not all(math.isfinite(v) for v in (challenger, champion, margin)):
        return False
    new, old, step = (Fraction(repr(float(v))) for v in (challenger, champion, margin))
    gain = new - old if choice.higher_is_better else old - new
    return gain > 0 and gain >= step * abs(old)


def decide(
    choice: Choice,
    *,
    challenger: Scores,
    champion: Scores | None,
    champion_label: str | None,
    margin: float,
) -> dict[str, Any]:
    """Whether auto-promotion goes ahead, why, and on what `basis`: "compared" (both
    scored), "no_champion" (the service has no model: a scored challenger is promoted as
    its first), "challenger_unscored" or "champion_unscored" (a missing comparison: never
    promoted)."""
    metric = choice.metric
    new = challenger.results.get(metric)
    old = champion.results.get(metric) if champion else None
    promoted = False
    if new is None:
        why = challenger.missing.get(metric) or challenger.error or "not computed"
        basis, reason = "challenger_unscored", f"the challenger's {metric} could not be computed"
        reason = f"not promoted: {reason} ({why})"
    elif champion is None:
        basis, promoted = "no_champion", True
        reason = (
            "promoted as the service's first model: the service has no champion to compare "
            f"with, and the challenger's {metric} is {new}"
        )
    elif old is None:
        why = champion.error or champion.missing.get(metric) or "not computed"
        basis = "champion_unscored"
        reason = (
            f"not promoted: the champion {champion_label}'s {metric} could not be computed "
            f"({why}), so there is no comparison; promote the challenger by hand if it "
            "should replace the champion"
        )
    else:
        basis, promoted = "compared", better(choice, new, old, margin)
        verb = "beats" if promoted else "does not beat"
        reason = f"challenger {metric} {new} {verb} champion {old} by the {_percent(margin)} margin"
    return {"promoted": promoted, "basis": basis, "reason": reason, "margin": margin}


def _percent(margin: float) -> str:
    return f"{margin * 100:g}%"


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
