"""PyCaret at the platform's edges: training a model for a use case, and the file form
of a model (what PyCaret's `save_model` writes: the joblib pickle of its pipeline)."""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Any

import joblib
import pandas as pd

from gits_common.schemas import Task, UseCase

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


def to_bytes(pipeline: Any) -> bytes:
    """A pipeline as the bytes of a PyCaret model file."""
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


def from_bytes(content: bytes) -> Any:
    """A pipeline from a PyCaret model file, its estimator set to one thread: worker
    replicas give the parallelism, and forests with n_jobs=-1 cost ~25 ms a call."""
    pipeline = joblib.load(io.BytesIO(content))
    estimator = final_estimator(pipeline)
    if "n_jobs" in getattr(estimator, "get_params", dict)():
        estimator.set_params(n_jobs=1)
    return pipeline


def sha256(content: bytes) -> str:
    """Hex SHA-256 of a model file."""
    return hashlib.sha256(content).hexdigest()


def final_estimator(pipeline: Any) -> Any:
    """The last step of a pipeline (the model itself)."""
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline
