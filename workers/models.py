"""The model a service is bound to: resolved through queue_manager, downloaded once,
checked against its SHA-256, loaded, and kept until the binding changes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from gits_common import errors, modeling
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.schemas import UseCase
from gits_common.values import Records, records_validator

log = logging.getLogger(__name__)


class NoModel(Exception):
    """The service has no usable model: it is not bound, or its file is corrupt."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pipeline and what it needs to score a reading."""

    algorithm: str
    version: int
    sha256: str
    use_case: UseCase
    features: list[str]
    pipeline: Any
    validator: Records  # checks a reading has every use-case feature, rightly typed

    @property
    def label(self) -> str:
        """How production rows and jobs name this model: `<algorithm>:<version>`."""
        return f"{self.algorithm}:{self.version}"


class ModelCache:
    """Holds the current model of one service; `current()` reloads it only when the
    binding has been marked stale (by an event or the periodic check)."""

    def __init__(self, service: str, queue_manager: QueueManagerClient, ml_data: MlDataClient):
        self.service = service
        self._qm = queue_manager
        self._ml = ml_data
        self._model: LoadedModel | None = None
        self._stale = True
        self._lock = asyncio.Lock()

    def mark_stale(self) -> None:
        """Re-resolve the binding before the next prediction."""
        self._stale = True

    async def current(self) -> LoadedModel:
        """The model to use now. Raises `NoModel` (a message can never succeed with it)
        or `Unavailable` (queue_manager or ml_data_api is down: try later)."""
        async with self._lock:
            if self._stale or self._model is None:
                self._model = await self._resolve()
                self._stale = False
            return self._model

    async def _resolve(self) -> LoadedModel:
        try:
            service = await self._qm.service(self.service)
        except errors.NotFound as exc:
            raise NoModel(f"no model bound to service {self.service!r}") from exc
        name, version = service["algorithm_name"], int(service["resolved_version"])
        if self._model is not None and (self._model.algorithm, self._model.version) == (
            name,
            version,
        ):
            return self._model
        return await self._load(name, version)

    async def _load(self, name: str, version: int) -> LoadedModel:
        try:
            algorithm, content = await self._qm.verified_model(name, version)
        except errors.ChecksumMismatch as exc:
            raise NoModel(exc.detail) from exc
        use_case = await self._ml.use_case(algorithm["use_case"])
        features = list(algorithm["features"])
        unknown = sorted(set(features) - set(use_case.feature_names))
        if unknown:
            raise NoModel(
                f"model {name}:{version} needs features the use case "
                f"{use_case.name!r} does not have: {unknown}"
            )
        pipeline = await asyncio.to_thread(modeling.from_bytes, content)
        log.info("service %s now uses model %s:%d", self.service, name, version)
        return LoadedModel(
            algorithm=name,
            version=version,
            sha256=algorithm["sha256"],
            use_case=use_case,
            features=features,
            pipeline=pipeline,
            validator=_validator(use_case),
        )


def _validator(use_case: UseCase) -> Records:
    """Every use-case feature is required: the production row stores them all."""
    columns = [(c.name, c.type, True) for c in use_case.features]
    return records_validator(f"{use_case.name}_features", columns, extra=True)
