"""The models production rows name (`<algorithm>:<version>`), downloaded once through
queue_manager, checked against their SHA-256 and kept by version."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gits_common import errors
from gits_common.clients import QueueManagerClient
from gits_common.registry import parse_model_label
from gits_common.schemas import UseCase
from gits_ml import modeling
from monitoring_api.frames import MODEL_VERSION

log = logging.getLogger(__name__)


class ModelUnavailable(Exception):
    """The named model cannot be had for good: no such version, or a corrupt file."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pipeline and the features it reads."""

    label: str
    features: list[str]
    pipeline: Any

    def predict(self, use_case: UseCase, frame: pd.DataFrame) -> pd.Series:
        """The model's predictions for every row, as plain values of the use case's
        prediction type (blocking: call it in a thread). Raises KeyError for a missing
        feature, `modeling.ModelFailed` for a model that fails or predicts other types."""
        return self.outputs(use_case, frame)[0]

    def outputs(self, use_case: UseCase, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """The model's predictions for every row, and each row's score as a worker
        stores it in `prediction_score` (classification: the probability of the
        predicted label; anomaly: the anomaly score; else NaN), both indexed as `frame`.
        Blocking; raises as `predict`."""
        found = modeling.predict(
            self.pipeline,
            frame[self.features],
            task=use_case.task,
            label_type=modeling.prediction_type(use_case),
        )
        labels = pd.Series(found.labels, index=frame.index, dtype=object)
        scores = pd.Series(found.scores, index=frame.index, dtype=object)
        return labels, pd.to_numeric(scores).astype(float)


def parse_label(label: str) -> tuple[str, int]:
    """`<algorithm>:<version>` as (algorithm, version), or `ModelUnavailable`."""
    try:
        return parse_model_label(label)
    except ValueError as exc:
        raise ModelUnavailable(f"model_version: {exc}") from None


class Models:
    """The newest few models used, by label. Versions never change once uploaded, so a
    loaded model stays valid for the life of the process."""

    def __init__(self, queue_manager: QueueManagerClient, *, size: int = 4) -> None:
        self._qm = queue_manager
        self._size = size
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = asyncio.Lock()

    async def bound(self, use_case: str, window: pd.DataFrame) -> LoadedModel:
        """The model a service of the use case is bound to now, found through
        queue_manager, never because a production row names it: when several services
        serve the use case, the one whose version made most of the window's predictions
        (else the first by name). `ModelUnavailable` when none is bound to a version that
        exists, `Unavailable` when queue_manager is down."""
        services = await self._qm.services()
        labels = [
            s.model_label
            for s in sorted(services, key=lambda s: s.name)
            if s.use_case == use_case and s.model_label is not None
        ]
        if not labels:
            raise ModelUnavailable(f"no service of use case {use_case!r} is bound to a model")
        made = window[MODEL_VERSION].value_counts() if MODEL_VERSION in window else pd.Series()
        label = max(labels, key=lambda label: int(made.get(label, 0)))
        return await self.get(label)

    async def get(self, label: str) -> LoadedModel:
        """The model, or `ModelUnavailable`, or `Unavailable` when queue_manager is down."""
        async with self._lock:  # one download per version, however many ask at once
            if label not in self._loaded:
                self._loaded[label] = await self._load(label)
                while len(self._loaded) > self._size:
                    self._loaded.popitem(last=False)
            self._loaded.move_to_end(label)
            return self._loaded[label]

    async def _load(self, label: str) -> LoadedModel:
        name, version = parse_label(label)
        try:
            record, content = await self._qm.verified_model(name, version)
        except errors.NotFound as exc:
            raise ModelUnavailable(f"queue_manager has no model {label}: {exc.detail}") from exc
        except errors.ChecksumMismatch as exc:
            raise ModelUnavailable(exc.detail) from exc
        try:
            pipeline = await asyncio.to_thread(modeling.from_bytes, content)
        except Exception as exc:  # a file that unpickles to nothing usable
            raise ModelUnavailable(f"model file {label} cannot be loaded: {exc!r}") from exc
        log.info("loaded model %s to predict the reference rows", label)
        return LoadedModel(label=label, features=list(record.features), pipeline=pipeline)
