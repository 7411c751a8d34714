"""The model a service is bound to: resolved through queue_manager, downloaded once,
checked against the SHA-256 queue_manager computed at upload, loaded, and kept until the
binding changes. A model that cannot be loaded never stops the worker: it is reported
to queue_manager as unusable, with the reason, and every message gets that reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from gits_common import errors
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.registry import ModelStatusReport, model_label
from gits_common.schemas import UseCase
from gits_common.values import Records, records_validator
from gits_ml import modeling
from gits_ml.modeling import ModelFailed, Predictions

log = logging.getLogger(__name__)
# Seconds between two checks of a binding while queue_manager is out of reach.
RECHECK_SECONDS = 5.0


class NoModel(Exception):
    """The service has no usable model: it is not bound, or its model cannot be loaded.
    Messages can never succeed with it; rebinding the service fixes them."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pipeline and what it needs to score a reading."""

    algorithm: str
    version: int
    sha256: str
    use_case: UseCase
    features: list[str]  # the model's own, in the order it reads them
    pipeline: Any
    validator: Records  # checks a reading has every use-case feature, rightly typed

    @property
    def label(self) -> str:
        """How production rows and jobs name this model: `<algorithm>:<version>`."""
        return model_label(self.algorithm, self.version)

    def predict(self, frame: Any) -> Predictions:
        """Checked predictions for the frame's rows (blocking); `ModelFailed` when the
        model raises or answers what its task does not promise."""
        return modeling.predict(
            self.pipeline,
            frame[self.features],
            task=self.use_case.task,
            label_type=modeling.prediction_type(self.use_case),
        )


class ModelCache:
    """Holds the current model of one service; `current()` reloads it only when the
    binding has been marked stale (by an event or the periodic check). A version that
    failed to load is not tried again until the binding changes."""

    def __init__(
        self,
        service: str,
        queue_manager: QueueManagerClient,
        ml_data: MlDataClient,
        *,
        worker_id: str,
    ) -> None:
        self.service = service
        self.worker_id = worker_id
        self._qm = queue_manager
        self._ml = ml_data
        self._model: LoadedModel | None = None
        self._failed: tuple[tuple[str, int, str], NoModel] | None = None
        self._reported: dict[tuple[str, int], bool] = {}
        self._stale = True
        self._recheck_at = 0.0
        self._lock = asyncio.Lock()

    def mark_stale(self) -> None:
        """Re-resolve the binding before the next prediction."""
        self._stale = True

    async def current(self) -> LoadedModel:
        """The model to use now. Raises `NoModel` (a message can never succeed with it)
        or `Unavailable` (queue_manager or ml_data_api is down and no model is cached
        yet). While queue_manager is out of reach the cached model goes on being used,
        and the binding is checked again at most every RECHECK_SECONDS."""
        async with self._lock:
            due = self._stale and time.monotonic() >= self._recheck_at
            if self._model is None or due:
                try:
                    self._model = await self._resolve()
                    self._stale = False
                except errors.Unavailable as exc:
                    if self._model is None:
                        raise
                    self._recheck_at = time.monotonic() + RECHECK_SECONDS
                    log.warning(
                        "binding not checked (%s); going on with %s", exc, self._model.label
                    )
            return self._model

    async def unusable(self, model: LoadedModel, reason: str) -> None:
        """Tell queue_manager that the model fails on every message it is given."""
        await self._report(model.algorithm, model.version, usable=False, reason=reason)

    async def usable(self, model: LoadedModel) -> None:
        """Tell queue_manager that the model predicts (once per version and state)."""
        await self._report(model.algorithm, model.version, usable=True, reason=None)

    async def _resolve(self) -> LoadedModel:
        try:
            service = await self._qm.service(self.service)
        except errors.NotFound as exc:
            raise NoModel(f"no model bound to service {self.service!r}") from exc
        if service.resolved_version is None or service.sha256 is None:
            raise NoModel(
                f"service {self.service!r} is bound to {service.algorithm_name}:"
                f"{service.algorithm_version}, which is gone; rebind it"
            )
        key = (service.algorithm_name, service.resolved_version, service.sha256)
        # The binding was looked at again because it changed (a rebind, a promotion, a
        # rollback, even to the version in use): queue_manager forgot the workers' word
        # on the version then, so the next prediction says it again.
        self._reported.pop(key[:2], None)
        if self._model is not None and key == (
            self._model.algorithm,
            self._model.version,
            self._model.sha256,
        ):
            return self._model
        if self._failed is not None and self._failed[0] == key:
            raise self._failed[1]
        try:
            return await self._load(service.algorithm_name, service.resolved_version)
        except NoModel as exc:
            self._failed = (key, exc)
            await self._report(key[0], key[1], usable=False, reason=str(exc))
            raise

    async def _load(self, name: str, version: int) -> LoadedModel:
        label = model_label(name, version)
        try:
            algorithm, content = await self._qm.verified_model(name, version)
            use_case = await self._ml.use_case(algorithm.use_case)
        except (errors.NotFound, errors.ChecksumMismatch) as exc:
            raise NoModel(f"model {label} cannot be used: {exc.detail}") from exc
        try:
            pipeline = await asyncio.to_thread(modeling.from_bytes, content)
            target = use_case.target.name if use_case.target is not None else None
            features = modeling.feature_names(pipeline, target)
        except ModelFailed as exc:
            raise NoModel(f"model {label} cannot be used ({exc.check}): {exc.reason}") from exc
        unknown = sorted(set(features) - set(use_case.feature_names))
        if unknown:
            raise NoModel(
                f"model {label} reads features the use case {use_case.name!r} does not "
                f"have: {unknown}"
            )
        log.info("service %s now uses model %s", self.service, label)
        return LoadedModel(
            algorithm=name,
            version=version,
            sha256=algorithm.sha256,
            use_case=use_case,
            features=features,
            pipeline=pipeline,
            validator=_validator(use_case),
        )

    async def _report(self, name: str, version: int, *, usable: bool, reason: str | None) -> None:
        """Tell queue_manager whether a version is usable, once per version and state.
        A report that cannot be made is only logged: it must not stop the work."""
        if self._reported.get((name, version)) is usable:
            return
        if not usable:
            log.error("service %s: model %s is unusable: %s", self.service, name, reason)
        report = ModelStatusReport(
            algorithm_name=name,
            version=version,
            usable=usable,
            reason=reason[:2000] if reason else None,
            worker=self.worker_id,
        )
        with contextlib.suppress(errors.GitsError):
            await self._qm.report_model_status(self.service, report)
            self._reported[(name, version)] = usable


def _validator(use_case: UseCase) -> Records:
    """Every use-case feature is required: the production row stores them all."""
    columns = [(c.name, c.type, True) for c in use_case.features]
    return records_validator(f"{use_case.name}_features", columns, extra=True)
