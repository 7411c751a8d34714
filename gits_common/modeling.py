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
    include = include or FAST_MODELS[use_case.task]
    experiment = _experiment(use_case.task)
    columns = use_case.feature_names + ([use_case.target.name] if use_case.target else [])
    options: dict[str, Any] = {"session_id": seed, "verbose": False, "html": False, "n_jobs": 1}
    if use_case.target is not None:
        options.update(target=use_case.target.name, fold=fold)
    experiment.setup(data=frame[columns], **options)
    if use_case.task is Task.anomaly:
        best, board = experiment.create_model(include[0], verbose=False), pd.DataFrame()
    else:
        best = experiment.compare_models(include=include, fold=fold, verbose=False)
        board = experiment.pull()
    pipeline = experiment.finalize_model(best)
    log.info("trained %s for %s", type(_final_estimator(pipeline)).__name__, use_case.name)
    return pipeline, board


def to_bytes(pipeline: Any) -> bytes:
    """A pipeline as the bytes of a PyCaret model file."""
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


def from_bytes(content: bytes) -> Any:
    """A pipeline from a PyCaret model file, its estimator set to one thread: worker
    replicas give the parallelism, and forests with n_jobs=-1 cost ~25 ms a call."""
    pipeline = joblib.load(io.BytesIO(content))
    estimator = _final_estimator(pipeline)
    if "n_jobs" in getattr(estimator, "get_params", dict)():
        estimator.set_params(n_jobs=1)
    return pipeline


def sha256(content: bytes) -> str:
    """Hex SHA-256 of a model file."""
    return hashlib.sha256(content).hexdigest()


def _final_estimator(pipeline: Any) -> Any:
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline
