"""Retraining as plain functions over DataFrames: check that the data can give a
meaningful result, train a challenger with PyCaret, score it and the champion on the same
held-out rows with PyCaret's own metrics, and decide whether the challenger wins."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_score, recall_score

from gits_common import errors
from gits_common.retraining import DEFAULT_METRIC, METRICS, MODEL_IDS
from gits_common.schemas import Task, UseCase
from gits_ml import modeling

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]

# The anomaly metrics as PyCaret's metric table names its own (sklearn.metrics, the
# anomaly class 1 as positive; a model that flags nothing has precision 0, not an error).
ANOMALY_SCORERS = [
    {"Display Name": name, "Score Function": function, "Target": "pred",
     "Args": {"pos_label": 1, "zero_division": 0.0}}
    for name, function in (("F1", f1_score), ("Precision", precision_score),
                           ("Recall", recall_score))
]  # fmt: skip
# R2 is 1 - SS_res / SS_tot: on held-out rows whose target never varies SS_tot is 0, and
# sklearn's r2_score then answers 1.0 or 0.0 (force_finite), a number that means nothing.
UNDEFINED_ON_CONSTANT_TARGET = frozenset({"R2"})
HOLDOUT = "the held-out rows (testing table and newest labelled production rows)"
THRESHOLD_RULE = (
    "threshold chosen (best F1) on the testing table's rows, both models scored on the "
    "newest labelled production rows"
)
HALVES_RULE = (
    "threshold chosen (best F1) on the older half of the held-out rows, both models scored "
    "on the newer half (the newest labelled production rows alone lack an anomaly or a "
    "normal row)"
)


@dataclass(frozen=True)
class Choice:
    """What a retraining job compares and selects on, and how it builds the challenger."""

    models: list[str]
    metric: str
    higher_is_better: bool
    tuning: modeling.Tuning | None = None
    ensemble: str | None = None  # one of modeling.ENSEMBLES
    fix_imbalance: bool = False

    @property
    def setup_options(self) -> dict[str, Any]:
        """PyCaret `setup` options: SMOTE (imbalanced-learn) on the training folds."""
        return {"fix_imbalance": True} if self.fix_imbalance else {}


def choose(
    task: Task,
    models: list[str] | None,
    metric: str | None,
    default: list[str],
    *,
    tune: dict[str, Any] | None = None,
    ensemble: str | None = None,
    fix_imbalance: bool = False,
) -> Choice:
    """The models, metric and building options of a request (`tune` as RetrainingCreate
    holds it), or `InvalidInput` naming the field that is wrong: unknown model ids or
    metric, a blend or stack of fewer than 2 models, imbalance handling outside
    classification, tuning or ensembles of anomaly models (PyCaret 3.3's anomaly
    experiment has neither tune_model nor ensembles)."""
    _check_options(task, tune=tune, ensemble=ensemble, fix_imbalance=fix_imbalance)
    fallback = [m for m in default if m in MODEL_IDS[task]] or modeling.FAST_MODELS[task]
    wanted = list(dict.fromkeys(models or fallback))
    unknown = sorted(set(wanted) - MODEL_IDS[task])
    if unknown:
        known = ", ".join(sorted(MODEL_IDS[task]))
        raise errors.InvalidInput(
            f"models: unknown {task} model ids {unknown}; PyCaret offers {known}"
        )
    if ensemble in ("blend", "stack") and len(wanted) < 2:
        raise errors.InvalidInput(
            f"ensemble: {ensemble!r} combines the best 2 or more of the compared models, "
            f"but models names only {wanted}; name at least 2, or use 'bagging' or 'boosting'"
        )
    metric = metric or DEFAULT_METRIC[task]
    if metric not in METRICS[task]:
        names = ", ".join(METRICS[task])
        raise errors.InvalidInput(
            f"metric: unknown {task} metric {metric!r}; choose one of {names}"
        )
    tuning = modeling.Tuning(**tune) if tune else None
    return Choice(wanted, metric, METRICS[task][metric], tuning, ensemble, fix_imbalance)


def article(task: Task) -> str:
    """'a' or 'an' before a task's name."""
    return "an" if task.value[0] in "aeiou" else "a"


def _check_options(
    task: Task, *, tune: dict[str, Any] | None, ensemble: str | None, fix_imbalance: bool
) -> None:
    if fix_imbalance and task is not Task.classification:
        raise errors.InvalidInput(
            f"fix_imbalance: imbalance handling (SMOTE) balances the classes of a "
            f"classification use case; {article(task)} {task} use case has none"
        )
    if task is Task.anomaly and tune:
        raise errors.InvalidInput(
            "tune: PyCaret 3.3's anomaly experiment has no tune_model (its hyperparameter "
            "search needs a supervised target); leave tune out for anomaly use cases"
        )
    if task is Task.anomaly and ensemble:
        raise errors.InvalidInput(
            "ensemble: PyCaret 3.3's anomaly experiment has no blend_models, stack_models "
            "or ensemble_model; leave ensemble out for anomaly use cases"
        )


# --- What data can give a meaningful result ---


# SMOTE makes a minority row from its k nearest minority neighbours (imbalanced-learn's
# default k_neighbors=5), so every set it is fitted on needs k + 1 rows of each class.
SMOTE_NEIGHBOURS = 5
TRAIN_SIZE = 0.7  # PyCaret setup's train_size


def min_rows_per_class(fold: int, *, fix_imbalance: bool = False) -> int:
    """Rows each class needs to be cross-validated in `fold` folds. PyCaret's setup keeps
    30% of each class for its own test split (train_size 0.7, stratified) and
    cross-validates the rest in stratified folds, which need `fold` rows of every class;
    2 x fold rows always leave that many after the split (sklearn's StratifiedKFold and
    train_test_split). With `fix_imbalance`, SMOTE runs on each fold's training part,
    0.7 x (fold - 1) / fold of the rows, which must hold SMOTE_NEIGHBOURS + 1 of every
    class (imbalanced-learn#572: "Expected n_neighbors <= n_samples_fit"); one row more
    covers the stratified splits' rounding."""
    if not fix_imbalance:
        return 2 * fold
    share = TRAIN_SIZE * (fold - 1) / fold
    return max(2 * fold, math.ceil((SMOTE_NEIGHBOURS + 2) / share))


def class_counts(labels: pd.Series) -> dict[str, int]:
    """Rows per class, by the class's name."""
    counts = labels.astype(str).value_counts()
    return {name: int(counts[name]) for name in sorted(counts.index)}


def check_data(
    use_case: UseCase,
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    fold: int,
    testing_rows: int | None = None,
    fix_imbalance: bool = False,
) -> None:
    """Refuse data on which retraining would report a meaningless result (or, with
    `fix_imbalance`, on which SMOTE cannot run: `min_rows_per_class`): raises
    `errors.InvalidInput` giving the counts and what is needed. Classification needs at
    least 2 classes in the training rows, each with `min_rows_per_class(fold)` rows, and
    at least 2 classes in the held-out rows (on one class AUC is undefined and the other
    metrics cannot tell models apart); regression needs a target that varies in the
    training rows. An anomaly use case needs a 0/1 target (known anomalies) and, in both
    parts of `anomaly_parts` (the first `testing_rows` held-out rows are the testing
    table's), normal rows and anomalies. `holdout` (and `training`, except for anomaly use
    cases) hold the target column, without missing values."""
    if holdout.empty:
        raise errors.InvalidInput(f"{HOLDOUT} are empty: both models need rows to be scored on")
    if use_case.task is Task.anomaly:
        anomaly_parts(use_case, holdout, testing_rows)
        return
    assert use_case.target is not None  # UseCase demands one for supervised tasks
    target = use_case.target.name
    if use_case.task is Task.classification:
        _check_training_classes(training[target], target, fold, fix_imbalance=fix_imbalance)
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


def _check_training_classes(
    labels: pd.Series, target: str, fold: int, *, fix_imbalance: bool = False
) -> None:
    counts = class_counts(labels)
    needed = min_rows_per_class(fold, fix_imbalance=fix_imbalance)
    why = (
        f"PyCaret keeps 30% of each class for its own test split and cross-validates the "
        f"rest in {fold} stratified folds"
    )
    if fix_imbalance:
        why += (
            f", and fix_imbalance's SMOTE needs {SMOTE_NEIGHBOURS + 1} rows of each class in "
            "every fold it balances"
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


@dataclass(frozen=True)
class Parts:
    """An anomaly retraining's held-out rows: where the threshold is chosen, where both
    models are scored, and the rule that split them."""

    threshold: pd.DataFrame
    evaluation: pd.DataFrame
    rule: str


def anomaly_parts(use_case: UseCase, holdout: pd.DataFrame, testing_rows: int | None) -> Parts:
    """The held-out rows of an anomaly use case split in two (`THRESHOLD_RULE`: the first
    `testing_rows` rows, the testing table's, and the rest, the newest labelled
    production rows; `HALVES_RULE`, older and newer half, when the production rows alone
    lack an anomaly or a normal row). Raises `errors.InvalidInput` for a use case without
    a target, labels other than 0/1, or a part without both normal rows and anomalies."""
    if use_case.target is None:
        raise errors.InvalidInput(
            f"anomaly use case {use_case.name} has no target: retraining chooses the "
            "threshold and compares models by F1, Precision and Recall against known "
            "anomalies, so it needs a target column of 0/1 labels (1: anomaly)"
        )
    target = use_case.target.name
    labels = pd.to_numeric(holdout[target], errors="coerce")
    bad = sorted({str(v) for v, n in zip(holdout[target], labels, strict=True) if n not in (0, 1)})
    if bad:
        raise errors.InvalidInput(
            f"{HOLDOUT}' {target} holds {bad[:5]}: anomaly labels are 0 (normal) or 1 (anomaly)"
        )
    split = len(holdout) if testing_rows is None else testing_rows
    parts = Parts(holdout.iloc[:split], holdout.iloc[split:], THRESHOLD_RULE)
    if not _both_kinds(parts.evaluation[target]):
        half = len(holdout) // 2
        parts = Parts(holdout.iloc[:half], holdout.iloc[half:], HALVES_RULE)
    for name, rows in (("threshold", parts.threshold), ("evaluation", parts.evaluation)):
        if not _both_kinds(rows[target]):
            counts = class_counts(rows[target].astype(int))
            raise errors.InvalidInput(
                f"{HOLDOUT} hold no anomaly or no normal row in their {name} part ({parts.rule}):"
                f" counts of {target} {counts}; choosing a threshold and scoring F1, Precision "
                "and Recall need known anomalies (1) and normal rows (0) in both parts"
            )
    return parts


def _both_kinds(labels: pd.Series) -> bool:
    return set(labels.astype(int)) == {0, 1}


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
    # How the challenger was built: "tuning", "ensemble" (modeling.Built's records) and,
    # for anomaly models, "threshold" (the chosen threshold and the rows it was chosen on).
    details: dict[str, Any] = field(default_factory=dict)


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
    testing_rows: int | None = None,
) -> Outcome:
    """Train the best of the chosen models on `training` (tuned and combined as `choice`
    asks); score it and the champion on the same held-out rows (for anomaly use cases,
    `retrain_anomaly`). Raises `errors.InvalidInput` (from `check_data`) before training
    on data that could only give a meaningless result."""
    check_data(
        use_case,
        training,
        holdout,
        fold=fold,
        testing_rows=testing_rows,
        fix_imbalance=choice.fix_imbalance,
    )
    progress("setting up the experiment", 15)
    setup = modeling.experiment(
        use_case, training, fold=fold, n_jobs=n_jobs, setup_options=choice.setup_options
    )
    if use_case.task is Task.anomaly:
        parts = anomaly_parts(use_case, holdout, testing_rows)
        return retrain_anomaly(setup, use_case, parts, champion, choice, budget_seconds, progress)
    progress(f"comparing {len(choice.models)} models", 25)
    built = modeling.build_model(
        setup,
        include=choice.models,
        fold=fold,
        sort=choice.metric,
        budget_minutes=budget_seconds / 60 if budget_seconds else None,
        tuning=choice.tuning,
        ensemble=choice.ensemble,
    )
    progress("scoring challenger and champion on the held-out rows", 85)
    return Outcome(
        challenger=built.pipeline,
        challenger_scores=score(setup, built.pipeline, holdout, use_case),
        champion_scores=score_champion(setup, champion, holdout, use_case) if champion else None,
        leaderboard=_records(built.board),
        details={"tuning": built.tuning, "ensemble": built.ensemble},
    )


def retrain_anomaly(
    setup: Any,
    use_case: UseCase,
    parts: Parts,
    champion: Champion | None,
    choice: Choice,
    budget_seconds: float | None,
    progress: Progress,
) -> Outcome:
    """Fit each chosen pyod model on the experiment's rows, give it the threshold with
    the best F1 on `parts.threshold` (`modeling.fit_threshold`), keep the best by the
    choice's metric there, and score it and the champion (at its own threshold) on
    `parts.evaluation`. Models are fitted until `budget_seconds` have passed (the first
    always is); one that fails to fit is left out of the leaderboard."""
    started, board, fitted = time.monotonic(), [], []
    for number, model_id in enumerate(choice.models):
        if number and budget_seconds and time.monotonic() - started > budget_seconds:
            log.info("time budget spent: %s not fitted", choice.models[number:])
            break
        progress(f"fitting {model_id}", 25 + 60 * number // len(choice.models))
        try:
            pipeline, _ = modeling.best_model(setup, Task.anomaly, include=[model_id])
            picked = modeling.fit_threshold(pipeline, parts.threshold, use_case)
        except Exception as exc:  # e.g. a detector that cannot fit these rows
            log.warning("anomaly model %s left out: %r", model_id, exc)
            continue
        scores = score(setup, pipeline, parts.threshold, use_case)
        board.append({"id": model_id, **scores.results, "Threshold": picked.threshold})
        fitted.append((scores.results.get(choice.metric), pipeline))
    if not fitted:
        raise ValueError(f"none of the models {choice.models} could be fitted on this data")
    sign = 1 if choice.higher_is_better else -1
    _, challenger = max(fitted, key=lambda pair: -math.inf if pair[0] is None else sign * pair[0])
    board.sort(
        key=lambda row: -math.inf if row[choice.metric] is None else -sign * row[choice.metric]
    )
    progress("scoring challenger and champion on the held-out rows", 85)
    champion_pipeline = champion.pipeline if champion else None
    threshold = {
        "rule": parts.rule,
        "chosen": modeling.anomaly_threshold(challenger),
        "champion": modeling.anomaly_threshold(champion_pipeline) if champion_pipeline else None,
        "threshold_rows": len(parts.threshold),
        "evaluation_rows": len(parts.evaluation),
    }
    evaluation = parts.evaluation
    return Outcome(
        challenger=challenger,
        challenger_scores=score(setup, challenger, evaluation, use_case),
        champion_scores=score_champion(setup, champion, evaluation, use_case) if champion else None,
        leaderboard=board,
        details={"threshold": threshold},
    )


def score(setup: Any, pipeline: Any, holdout: pd.DataFrame, use_case: UseCase) -> Scores:
    """The original's result block: the model's name and PyCaret's metrics on `holdout`
    (for anomaly models, `ANOMALY_SCORERS` of its 0/1 flags); a metric that cannot be
    computed, or is undefined on these rows, is None and its reason is in `missing`.
    Raises what the model's `predict` raises."""
    assert use_case.target is not None  # check_data refuses use cases without one
    features, truth = holdout[use_case.feature_names], holdout[use_case.target.name]
    if use_case.task is Task.anomaly:
        truth = truth.astype(int)
    predicted = pipeline.predict(features)
    results: dict[str, Any] = {"Model": modeling.display_name(setup, pipeline)}
    missing: dict[str, str] = {}
    for metric in _metric_table(setup, use_case.task):
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


def _metric_table(setup: Any, task: Task) -> list[dict[str, Any]]:
    """PyCaret's metric table of a supervised experiment (name, function, whether it
    reads labels or probabilities, arguments), or `ANOMALY_SCORERS` (an anomaly
    experiment has none)."""
    if task is Task.anomaly:
        return ANOMALY_SCORERS
    return [row.to_dict() for _, row in setup.get_metrics().iterrows()]


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


def _records(board: pd.DataFrame) -> list[dict[str, Any]]:
    table = board.reset_index(names="id").replace({np.nan: None})
    return [
        {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
        for row in table.to_dict("records")
    ]
