"""The models production rows name (`<algorithm>:<version>`), downloaded once through
queue_manager, checked against their SHA-256 and kept by version."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gits_common import errors, modeling
from gits_common.clients import QueueManagerClient

log = logging.getLogger(__name__)


class ModelUnavailable(Exception):
    """The named model cannot be had for good: no such version, or a corrupt file."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pipeline and the features it reads."""

    label: str
    features: list[str]
    pipeline: Any

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """The model's predictions for every row (blocking: call it in a thread)."""
        return pd.Series(self.pipeline.predict(frame[self.features]), index=frame.index)


def parse_label(label: str) -> tuple[str, int]:
    """`<algorithm>:<version>` as (algorithm, version), or `ModelUnavailable`."""
    name, _, version = label.rpartition(":")
    if not name or not version.isdigit():
        raise ModelUnavailable(f"model_version {label!r} is not '<algorithm>:<version>'")
    return name, int(version)


class Models:
    """The newest few models used, by label. Versions never change once uploaded, so a
    loaded model stays valid for the life of the process."""

    def __init__(self, queue_manager: QueueManagerClient, *, size: int = 4) -> None:
        self._qm = queue_manager
        self._size = size
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = asyncio.Lock()

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
        return LoadedModel(label=label, features=list(record["features"]), pipeline=pipeline)
