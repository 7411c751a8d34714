"""PyCaret at the platform's edges: training a model for a use case, and the file form
of a model (what PyCaret's `save_model` writes: the joblib pickle of its pipeline)."""

from __future__ import annotations

import hashlib
import io
import logging
import math
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
    Task.anomaly: ["iforest"],
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
    use_case: UseCase, frame: pd.DataFrame, *, fold: int = 3, seed: int = 7, n_jobs: int = 1
) -> Any:
    """A PyCaret experiment set up on the use case's feature and target columns; `n_jobs`
    processes cross-validate (-1: one per core)."""
    setup = _experiment(use_case.task)
    columns = use_case.feature_names + ([use_case.target.name] if use_case.target else [])
    options: dict[str, Any] = {
        "session_id": seed,
        "verbose": False,
        "html": False,
        "n_jobs": n_jobs,
    }
    if use_case.target is not None:
        options.update(target=use_case.target.name, fold=fold)
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
    and the leaderboard PyCaret produced."""
    if task is Task.anomaly:
        best, board = setup.create_model(include[0], verbose=False), pd.DataFrame()
    else:
        options: dict[str, Any] = {"include": include, "fold": fold, "verbose": False}
        if sort is not None:
            options["sort"] = sort
        if budget_minutes is not None:
            options["budget_time"] = budget_minutes
        best = setup.compare_models(**options)
        board = setup.pull()
        if isinstance(best, list):  # PyCaret answers [] when every model failed
            raise ValueError(f"none of the models {include} could be trained on this data")
    pipeline = setup.finalize_model(best)
    log.info("trained %s", type(final_estimator(pipeline)).__name__)
    return pipeline, board


def train(
    use_case: UseCase,
    frame: pd.DataFrame,
    *,
    include: list[str] | None = None,
    fold: int = 3,
    seed: int = 7,
) -> tuple[Any, pd.DataFrame]:
    """The best of `include` on the use case's features, refitted on all of `frame`,
    and the leaderboard PyCaret's cross-validation produced."""
    setup = experiment(use_case, frame, fold=fold, seed=seed)
    return best_model(
        setup, use_case.task, include=include or FAST_MODELS[use_case.task], fold=fold
    )


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
