"""PyCaret at the platform's edges: training a model for a use case, and the file form
of a model (what PyCaret's `save_model` writes: the joblib pickle of its pipeline)."""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from gits_common.errors import said
from gits_common.schemas import ColumnType, Task, UseCase
from gits_common.values import VALUE_TYPES
from gits_ml import unpickling

log = logging.getLogger(__name__)

# Quick to train and good on tabular sensor data; the demo bootstrap uses these.
FAST_MODELS = {
    Task.regression: ["lr", "ridge", "lightgbm"],
    Task.classification: ["lr", "ridge", "lightgbm"],
    # Robust covariance (Mahalanobis distance) first: it sees a stuck sensor break the
    # sensors' correlation, which an isolation forest mostly misses (benchmarks/anomaly_demo).
    Task.anomaly: ["mcd", "iforest"],
}


def _experiment(task: Task) -> Any:
    if task is Task.regression:
        from pycaret.regression import RegressionExperiment

        return RegressionExperiment()
    if task is Task.classification:
        from pycaret.classification import ClassificationExperiment

        return ClassificationExperiment()
    from pycaret.anomaly import AnomalyExperiment

    return AnomalyExperiment()


def experiment(
    use_case: UseCase,
    frame: pd.DataFrame,
    *,
    fold: int = 3,
    seed: int = 7,
    n_jobs: int = 1,
    setup_options: dict[str, Any] | None = None,
) -> Any:
    """A PyCaret experiment set up on the use case's feature and target columns (an
    anomaly experiment on the features only); `n_jobs` processes cross-validate (-1: one
    per core); `setup_options` go to PyCaret's `setup` as they are (e.g.
    `fix_imbalance=True`: SMOTE from imbalanced-learn on the training folds)."""
    setup = _experiment(use_case.task)
    # An anomaly model learns from the features alone: a known label (the demo's
    # `anomaly` column) only judges it, and would be read as a feature otherwise.
    target = use_case.target.name if use_case.target and use_case.task is not Task.anomaly else None
    columns = use_case.feature_names + ([target] if target else [])
    options: dict[str, Any] = {
        "session_id": seed,
        "verbose": False,
        "html": False,
        "n_jobs": n_jobs,
        **(setup_options or {}),
    }
    if target:
        options.update(target=target, fold=fold)
    setup.setup(data=frame[columns], **options)
    return setup


def best_model(
    setup: Any,
    task: Task,
    *,
    include: list[str],
    fold: int = 3,
    sort: str | None = None,
    budget_minutes: float | None = None,
) -> tuple[Any, pd.DataFrame]:
    """The best of `include` by cross-validation, refitted on all the experiment's data,
    and the leaderboard PyCaret produced (an anomaly experiment has no cross-validation:
    the first of `include`, fitted on all its rows, and an empty board)."""
    if task is Task.anomaly:
        # PyCaret's anomaly experiment fits on all its data and has no finalize_model;
        # its save_model adds the model to the preprocessing pipeline, as here.
        model = setup.create_model(include[0], verbose=False)
        return with_preprocessing(setup, model), pd.DataFrame()
    built = build_model(setup, include=include, fold=fold, sort=sort, budget_minutes=budget_minutes)
    return built.pipeline, built.board


# --- Hyperparameter search and ensembles (retraining) ---

ENSEMBLES = ("blend", "stack", "bagging", "boosting")
# blend and stack combine this many of compare_models' best (fewer if fewer were compared).
ENSEMBLE_SIZE = 3


@dataclass(frozen=True)
class Tuning:
    """A hyperparameter search by PyCaret's `tune_model` with Optuna (TPE sampler): at
    most `trials` trials and `time_budget_seconds` seconds, stopped early after
    `early_stopping_trials` trials in a row without a better cross-validated score."""

    trials: int
    time_budget_seconds: float
    early_stopping_trials: int


@dataclass(frozen=True)
class Built:
    """A trained pipeline, PyCaret's leaderboard, and how the model was made: `tuning`
    and `ensemble` are JSON-ready records (None when not asked for)."""

    pipeline: Any
    board: pd.DataFrame
    tuning: dict[str, Any] | None = None
    ensemble: dict[str, Any] | None = None


def build_model(
    setup: Any,
    *,
    include: list[str],
    fold: int = 3,
    sort: str | None = None,
    budget_minutes: float | None = None,
    tuning: Tuning | None = None,
    ensemble: str | None = None,
) -> Built:
    """A supervised experiment's best of `include` by cross-validation (PyCaret's
    `compare_models`, sorted by `sort`), tuned if `tuning` is given, then combined as
    `ensemble` (one of ENSEMBLES: "blend"/"stack" of the best ENSEMBLE_SIZE compared
    models, the tuned one first; "bagging"/"boosting" of the best one), and refitted on
    all the experiment's data. Raises `ValueError` when no model (or, for blend and
    stack, fewer than 2) could be trained, and what PyCaret raises for a model that
    cannot be combined (e.g. boosting a model without sample weights)."""
    combined = ensemble in ("blend", "stack")
    options: dict[str, Any] = {"include": include, "fold": fold, "verbose": False}
    options["n_select"] = min(ENSEMBLE_SIZE, len(include)) if combined else 1
    if sort is not None:
        options["sort"] = sort
    if budget_minutes is not None:
        options["budget_time"] = budget_minutes
    found = setup.compare_models(**options)
    board = setup.pull()
    models = found if isinstance(found, list) else [found]  # n_select > 1 answers a list
    if not models:  # PyCaret answers [] when every model failed
        raise ValueError(f"none of the models {include} could be trained on this data")
    tuned = None
    if tuning is not None:
        best, tuned = tune(setup, models[0], tuning, metric=sort, fold=fold)
        models = [best, *models[1:]]
    model, record = models[0], None
    if ensemble is not None:
        model, record = combine(setup, models, ensemble, metric=sort, fold=fold)
    pipeline = setup.finalize_model(model)
    log.info("trained %s", type(final_estimator(pipeline)).__name__)
    return Built(pipeline, board, tuned, record)


def tune(
    setup: Any, model: Any, tuning: Tuning, *, metric: str | None, fold: int
) -> tuple[Any, dict[str, Any]]:
    """`model` tuned by PyCaret's `tune_model` with Optuna (optuna-integration's
    OptunaSearchCV, given `timeout` and an early-stopping callback), optimising `metric`
    (PyCaret's name, e.g. "R2"; None: PyCaret's default) in `fold`-fold cross-validation;
    `choose_better` keeps the untuned model when tuning did not improve it. Answers the
    model and a record: trials run, best parameters, what stopped the search (`stopped_by`:
    "early_stopping", "time_budget" or "trials"), `kept` ("tuned" or "untuned"), seconds."""
    stop = _NoImprovement(tuning.early_stopping_trials)
    options: dict[str, Any] = {"optimize": metric} if metric else {}
    started = time.monotonic()
    best, tuner = setup.tune_model(
        model,
        fold=fold,
        n_iter=tuning.trials,
        search_library="optuna",
        choose_better=True,
        return_tuner=True,
        verbose=False,
        timeout=tuning.time_budget_seconds,  # to OptunaSearchCV, through tune_model's kwargs
        callbacks=[stop],
        **options,
    )
    seconds = time.monotonic() - started
    trials = len(tuner.study_.trials)
    stopped_by = "early_stopping" if stop.stopped else "trials"
    if not stop.stopped and trials < tuning.trials:
        stopped_by = "time_budget"
    params = {k.rpartition("__")[2]: _plain(v) for k, v in tuner.best_params_.items()}
    record = {
        "model": display_name(setup, model),
        "trials": trials,
        "best_params": params,
        "early_stopped": stop.stopped,
        "stopped_by": stopped_by,
        "kept": "tuned" if _has_params(best, params) else "untuned",
        "seconds": round(seconds, 1),
    }
    log.info("tuned %s: %s", record["model"], record)
    return best, record


class _NoImprovement:
    """An Optuna callback that stops the study after `patience` finished trials in a row
    without a better value than the best trial's."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.stopped = False

    def __call__(self, study: Any, trial: Any) -> None:
        try:
            best = study.best_trial.number
        except ValueError:  # no trial has finished yet
            return
        if trial.number - best >= self.patience:
            self.stopped = True
            study.stop()


def combine(
    setup: Any, models: list[Any], method: str, *, metric: str | None, fold: int
) -> tuple[Any, dict[str, Any]]:
    """An ensemble of `models` (best first) by PyCaret: "blend" (`blend_models`: voting,
    soft when every model has probabilities), "stack" (`stack_models`: a meta-model over
    their predictions), "bagging" or "boosting" (`ensemble_model` of the first). Answers
    the ensemble and a record of the method and the models it combines. Raises
    `ValueError` for blend and stack of fewer than 2 models."""
    options: dict[str, Any] = {"fold": fold, "verbose": False}
    if metric:
        options["optimize"] = metric
    if method in ("blend", "stack"):
        if len(models) < 2:
            raise ValueError(f"ensemble {method!r} needs 2 or more trained models, got 1")
        build = setup.blend_models if method == "blend" else setup.stack_models
        model = build(models, **options)
    else:
        model = setup.ensemble_model(models[0], method=method.capitalize(), **options)
        models = models[:1]
    record = {
        "method": method,
        "models": [display_name(setup, m) for m in models],
        "model": display_name(setup, model),
    }
    log.info("built ensemble %s", record)
    return model, record


def display_name(setup: Any, model: Any) -> str:
    """PyCaret's display name of a model (as in its leaderboards), else its class name."""
    estimator = final_estimator(model)
    try:
        return str(setup._get_model_name(estimator))
    except Exception:  # a model PyCaret does not know
        return type(estimator).__name__


def _has_params(model: Any, params: dict[str, Any]) -> bool:
    """Whether the model's estimator has these parameter values (choose_better refits
    the untuned model, so identity cannot tell which one it kept)."""
    found = final_estimator(model).get_params()
    return bool(params) and all(found.get(k) == v for k, v in params.items())


def _plain(value: Any) -> Any:
    """A numpy scalar as the plain Python value (JSON-ready)."""
    return value.item() if isinstance(value, np.generic) else value


def with_preprocessing(setup: Any, model: Any) -> Any:
    """The experiment's fitted preprocessing pipeline with `model` as its last step: what
    PyCaret's `save_model` writes for a model it did not finalize (pycaret
    internal/persistence.py)."""
    pipeline = copy.deepcopy(setup.pipeline)
    pipeline.steps.append(("trained_model", model))
    return pipeline


def train(
    use_case: UseCase,
    frame: pd.DataFrame,
    *,
    include: list[str] | None = None,
    fold: int = 3,
    seed: int = 7,
    evaluation: pd.DataFrame | None = None,
    setup_options: dict[str, Any] | None = None,
) -> tuple[Any, pd.DataFrame]:
    """The best of `include` on the use case's features, refitted on all of `frame`, and
    the leaderboard PyCaret's cross-validation produced. An anomaly model has no
    cross-validation: with labelled `evaluation` rows (features and the 0/1 target), each
    of `include` gets the threshold with the best F1 there (`fit_threshold`) and the best
    F1 wins, its board one row per model (Model, F1, Precision, Recall, threshold); without
    them, the first of `include` keeps pyod's threshold (its contamination, 5%)."""
    setup = experiment(use_case, frame, fold=fold, seed=seed, setup_options=setup_options)
    models = include or FAST_MODELS[use_case.task]
    if use_case.task is not Task.anomaly or evaluation is None:
        return best_model(setup, use_case.task, include=models, fold=fold)
    rows = []
    for model_id in models:
        pipeline, _ = best_model(setup, use_case.task, include=[model_id])
        choice = fit_threshold(pipeline, evaluation, use_case)
        rows.append((choice.f1, model_id, pipeline, choice))
    rows.sort(key=lambda row: -row[0])
    board = pd.DataFrame(
        [
            {"Model": m, "F1": c.f1, "Precision": c.precision, "Recall": c.recall,
             "threshold": c.threshold}
            for _, m, _, c in rows
        ]
    ).set_index("Model")  # fmt: skip
    log.info("anomaly models by F1 on the evaluation rows: %s", board["F1"].round(3).to_dict())
    return rows[0][2], board


class ModelFailed(Exception):
    """A model file that cannot be loaded, or a model that does not do what its use case
    needs. `check` names the check that failed (load, features, predict, output)."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason


@dataclass(frozen=True)
class Predictions:
    """A model's output for a frame of n rows: n labels (numbers for regression) as
    plain Python values of the prediction column's type, and for classifiers the
    probability of each predicted label (else None)."""

    labels: list[Any]
    scores: list[float | None]


def prediction_type(use_case: UseCase) -> ColumnType:
    """The type of a use case's `prediction` column: its target's, or int (0 normal, 1
    anomaly) for an anomaly use case without a target."""
    return use_case.target.type if use_case.target is not None else ColumnType.int


def to_bytes(pipeline: Any) -> bytes:
    """A pipeline as the bytes of a PyCaret model file."""
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


def from_bytes(content: bytes) -> Any:
    """A pipeline from a PyCaret model file, loaded by the allow-list unpickler (nothing
    the file names is imported unless a model may need it), its estimator set to one
    thread: worker replicas give the parallelism, and forests with n_jobs=-1 cost ~25 ms
    a call. Raises `ModelFailed("safety", ...)` for a file that names what a model never
    needs (os.system, builtins.eval, ...), `ModelFailed("load", ...)` for bytes that are
    not a model with `predict`."""
    try:
        pipeline = unpickling.load(content)
    except unpickling.UnsafeModelFile as exc:
        raise ModelFailed("safety", f"{exc}; nothing of it was run") from exc
    except MemoryError:
        raise  # a limit of the process, not a fault of the file's format
    except Exception as exc:  # the file is untrusted: any failure means "not a model"
        raise ModelFailed("load", f"the file is not a loadable model file ({said(exc)})") from exc
    if not callable(getattr(pipeline, "predict", None)):
        raise ModelFailed("load", f"the file holds a {type(pipeline).__name__}, not a model")
    try:
        estimator = final_estimator(pipeline)
        if "n_jobs" in estimator.get_params():
            estimator.set_params(n_jobs=1)
    except Exception as exc:  # no get_params: not a scikit-learn estimator, leave it be
        log.debug("left the estimator's n_jobs as saved: %r", exc)
    return pipeline


def feature_names(pipeline: Any, target: str | None) -> list[str]:
    """The features a fitted pipeline reads, in its own order: scikit-learn's
    `feature_names_in_` (set when a pipeline is fitted on a DataFrame), without the
    target (PyCaret fits its pipeline on the features and the target). Raises
    `ModelFailed("features", ...)` for a model fitted without column names."""
    names = getattr(pipeline, "feature_names_in_", None)
    if names is None:
        raise ModelFailed(
            "features",
            "the model does not name the features it reads (no feature_names_in_): fit it "
            "on a pandas DataFrame, as PyCaret's setup does, and save it with save_model",
        )
    features = [str(n) for n in names if str(n) != target]
    if not features:
        raise ModelFailed("features", "the model reads no features")
    doubled = sorted({f for f in features if features.count(f) > 1})
    if doubled:
        raise ModelFailed("features", f"the model names features twice: {doubled}")
    return features


def predict(
    pipeline: Any, frame: pd.DataFrame, *, task: Task, label_type: ColumnType
) -> Predictions:
    """The pipeline's predictions for every row of `frame` (its features, in the order
    the model reads them), checked to be what the task promises: one finite number per
    row for regression, one value of `label_type` per row for classification and anomaly
    detection (0 or 1), and for classifiers finite probabilities in [0, 1]. Raises
    `ModelFailed("predict" | "output", ...)`; never anything else."""
    try:
        raw = pipeline.predict(frame)
    except MemoryError:
        raise
    except Exception as exc:  # the model is untrusted code: whatever it raises is its fault
        raise ModelFailed("predict", f"the model raised {said(exc)}") from exc
    labels = _labels(raw, len(frame), task=task, label_type=label_type)
    scores: list[float | None] = [None] * len(frame)
    if task is Task.classification and callable(getattr(pipeline, "predict_proba", None)):
        scores = _scores(pipeline, frame)
    elif task is Task.anomaly and callable(getattr(pipeline, "decision_function", None)):
        scores = [float(s) for s in anomaly_scores(pipeline, frame)]
    return Predictions(labels, scores)


def _labels(raw: Any, rows: int, *, task: Task, label_type: ColumnType) -> list[Any]:
    values = np.asarray(raw)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != rows:
        raise ModelFailed(
            "output",
            f"the model answered shape {values.shape} for {rows} row(s), not one value a row",
        )
    plain = [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]
    if task is Task.regression:
        bad = [
            v
            for v in plain
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
        ]
        if bad:
            raise ModelFailed(
                "output", f"a regression model must predict finite numbers, got {_short(bad[0])}"
            )
        return [float(v) for v in plain]
    expected = TypeAdapter(VALUE_TYPES[label_type])
    out = []
    for value in plain:
        value = _as_label(value, label_type)
        try:
            out.append(expected.validate_python(value))
        except ValidationError:
            raise ModelFailed(
                "output",
                f"a {task.value} model must predict values of the target's type "
                f"{label_type.value}, got {_short(value)}",
            ) from None
    if task is Task.anomaly and any(v not in (0, 1) for v in out):
        raise ModelFailed("output", "an anomaly model must predict 0 (normal) or 1 (anomaly)")
    return out


def _as_label(value: Any, label_type: ColumnType) -> Any:
    """A model's label in the target's type where it means it exactly: numpy and
    PyCaret's label encoding give classes back as floats (1.0 for 1) and booleans as
    0/1 (pycaret#3482); anything else is left for the type check to refuse."""
    integral = isinstance(value, float) and value.is_integer()
    if label_type is ColumnType.int and integral:
        return int(value)
    zero_or_one = (isinstance(value, int) or integral) and value in (0, 1)
    if label_type is ColumnType.bool and not isinstance(value, bool) and zero_or_one:
        return bool(value)
    return value


def _scores(pipeline: Any, frame: pd.DataFrame) -> list[float | None]:
    try:
        probabilities = np.asarray(pipeline.predict_proba(frame), dtype=float)
    except Exception as exc:
        raise ModelFailed("predict", f"predict_proba raised {said(exc)}") from exc
    if probabilities.ndim != 2 or len(probabilities) != len(frame):
        raise ModelFailed("output", f"predict_proba answered shape {probabilities.shape}")
    best = probabilities.max(axis=1)
    if not (np.isfinite(best).all() and ((best >= 0) & (best <= 1)).all()):
        raise ModelFailed("output", "predict_proba gave probabilities outside [0, 1]")
    return [float(p) for p in best]


def anomaly_scores(pipeline: Any, frame: pd.DataFrame) -> np.ndarray:
    """The anomaly score of each row (pyod's `decision_function`: higher is more
    anomalous; the model flags a row when its score is above `anomaly_threshold`), as n
    finite floats. Raises `ModelFailed("predict" | "output", ...)`."""
    try:
        raw = np.asarray(pipeline.decision_function(frame), dtype=float)
    except Exception as exc:  # untrusted model code
        raise ModelFailed("predict", f"decision_function raised {said(exc)}") from exc
    if raw.shape != (len(frame),) or not np.isfinite(raw).all():
        raise ModelFailed("output", f"decision_function answered {raw.shape}, or not finite")
    return raw


def anomaly_threshold(pipeline: Any) -> float | None:
    """The score above which an anomaly model flags a row (pyod's `threshold_`), or None
    for a model that has none (every model of another task)."""
    value = getattr(final_estimator(pipeline), "threshold_", None)
    try:
        return float(value) if value is not None and math.isfinite(float(value)) else None
    except (TypeError, ValueError):
        return None


def set_threshold(pipeline: Any, threshold: float) -> None:
    """Make an anomaly model flag rows whose score is above `threshold` (pyod's
    `predict` compares `decision_function` with `threshold_`; pyod base.py). Raises
    `ValueError` for a model without one."""
    estimator = final_estimator(pipeline)
    if not hasattr(estimator, "threshold_"):
        raise ValueError(f"{type(estimator).__name__} has no score threshold to set")
    estimator.threshold_ = float(threshold)
    # pyod's `labels_` are the training rows' flags at the old threshold: keep them true.
    scores = getattr(estimator, "decision_scores_", None)
    if scores is not None:
        estimator.labels_ = (np.asarray(scores) > threshold).astype(int)


@dataclass(frozen=True)
class ThresholdChoice:
    """A score threshold chosen on labelled evaluation rows, and what it gives there."""

    threshold: float
    precision: float
    recall: float
    f1: float


def choose_threshold(scores: np.ndarray, labels: np.ndarray) -> ThresholdChoice:
    """The score threshold with the best F1 on evaluation rows: `scores` (n floats, higher
    is more anomalous) against `labels` (n of 0/1, 1 for a known anomaly). A row is
    flagged when its score is above the threshold, so the threshold is placed halfway
    between a score and the next lower one. Raises `ValueError` when the labels hold no
    anomaly or no normal row (no threshold can be judged)."""
    from sklearn.metrics import precision_recall_curve

    truth = np.asarray(labels).astype(int)
    if truth.min(initial=1) == truth.max(initial=0):
        raise ValueError("choosing a threshold needs labelled normal rows and anomalies")
    precision, recall, cuts = precision_recall_curve(truth, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1]))  # the last point has no threshold
    ordered = np.unique(scores)
    position = int(np.searchsorted(ordered, cuts[best]))
    below = ordered[position - 1] if position > 0 else cuts[best] - 1.0
    return ThresholdChoice(
        threshold=float((cuts[best] + below) / 2),
        precision=float(precision[best]),
        recall=float(recall[best]),
        f1=float(f1[best]),
    )


def fit_threshold(pipeline: Any, evaluation: pd.DataFrame, use_case: UseCase) -> ThresholdChoice:
    """Set an anomaly model's threshold to the best F1 on `evaluation` (rows with the use
    case's features and its 0/1 target: 1 for a known anomaly) and answer the choice.
    Raises `ValueError` for a use case without a target, or rows without both kinds."""
    if use_case.target is None:
        raise ValueError(f"{use_case.name} has no target: a threshold needs known anomalies")
    labelled = evaluation[evaluation[use_case.target.name].notna()]
    choice = choose_threshold(
        anomaly_scores(pipeline, labelled[use_case.feature_names]),
        labelled[use_case.target.name].to_numpy(),
    )
    set_threshold(pipeline, choice.threshold)
    return choice


def class_probabilities(pipeline: Any, frame: pd.DataFrame) -> tuple[list[Any], np.ndarray]:
    """A classifier's classes, as its `predict` names them (PyCaret encodes the target
    and decodes its predictions: the encoder's classes map the columns back), and its
    n x k matrix of probabilities for `frame`. Raises `ModelFailed("predict", ...)`."""
    try:
        matrix = np.asarray(pipeline.predict_proba(frame), dtype=float)
    except Exception as exc:
        raise ModelFailed("predict", f"predict_proba raised {said(exc)}") from exc
    encoder = dict(getattr(pipeline, "steps", [])).get("label_encoding")
    classes = getattr(getattr(encoder, "transformer", None), "classes_", None)
    if classes is None:
        classes = getattr(pipeline, "classes_", None)
    if classes is None:
        classes = range(matrix.shape[1])
    names = [c.item() if isinstance(c, np.generic) else c for c in list(classes)]
    return names, matrix


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def sha256(content: bytes) -> str:
    """Hex SHA-256 of a model file."""
    return hashlib.sha256(content).hexdigest()


def final_estimator(pipeline: Any) -> Any:
    """The last step of a pipeline (the model itself)."""
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline
