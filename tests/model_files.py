"""Small, real model files for tests: scikit-learn pipelines fitted on DataFrames, so
they name their features as PyCaret's do, load in well under a second, and differ in
their bytes from seed to seed."""

from __future__ import annotations

import io
import pickle
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from gits_common.schemas import UseCase


def fitted(features: list[str], *, classes: list[Any] | None = None, seed: int = 0) -> Pipeline:
    """A pipeline fitted on random rows of `features`: a linear regression, or a
    logistic regression over `classes` when they are given."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(40, len(features))), columns=features)
    if classes is None:
        target = frame.sum(axis=1) * (1 + seed) + rng.normal(size=len(frame))
        return Pipeline([("model", LinearRegression())]).fit(frame, target)
    labels = np.array([classes[i % len(classes)] for i in range(len(frame))], dtype=object)
    labels = pd.Series(labels).astype(type(classes[0]))
    return Pipeline([("model", LogisticRegression())]).fit(frame, labels)


def model_bytes(
    features: list[str],
    *,
    classes: list[Any] | None = None,
    seed: int = 0,
    padding: int = 0,
) -> bytes:
    """A model file (joblib, as PyCaret's save_model writes), `padding` bytes larger."""
    pipeline = fitted(features, classes=classes, seed=seed)
    if padding:
        pipeline.padding = np.random.default_rng(seed).bytes(padding)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


# Two classes of each target type, for classifiers of a use case.
CLASSES: dict[str, list[Any]] = {
    "int": [0, 1],
    "bool": [False, True],
    "text": ["a", "b"],
    "float": [0.0, 1.0],
}


def for_use_case(use_case: UseCase, *, seed: int = 0, **options: Any) -> bytes:
    """A model file that passes the upload check of `use_case` (regression or
    classification with the target's values 0 and 1, or True and False, or "a", "b")."""
    classes: list[Any] | None = None
    if use_case.task.value == "classification":
        assert use_case.target is not None
        classes = CLASSES[use_case.target.type.value]
    return model_bytes(use_case.feature_names, classes=classes, seed=seed, **options)


class Planted:
    """A pickle that runs code when it is loaded: `exec` of `source` (for tests of what
    the platform refuses to unpickle)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.source,))


def code_running_pickle(source: str) -> bytes:
    """The bytes of a pickle whose loading runs `source`."""
    return pickle.dumps(Planted(source))
