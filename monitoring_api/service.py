"""Reports on demand: read the window and the reference through ml_data_api, answer from
the cache when the same data was reported before, else build the report in a thread."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from gits_common import errors
from gits_common.monitoring import Reference, ReportFormat, ReportKind
from gits_common.schemas import Table, UseCase
from gits_ml import modeling
from monitoring_api import reports
from monitoring_api.cache import LruCache
from monitoring_api.frames import (
    PREDICTION,
    Window,
    before,
    fingerprint,
    kinds,
    labelled,
    typed,
)
from monitoring_api.models import LoadedModel, Models, ModelUnavailable
from monitoring_api.sources import Sources, WindowQuery

log = logging.getLogger(__name__)

MEDIA_TYPES = {ReportFormat.json: "application/json", ReportFormat.html: "text/html"}


@dataclass(frozen=True)
class ReportRequest:
    """One report as asked for."""

    kind: ReportKind
    reference: Reference = Reference.training
    window: WindowQuery = field(default_factory=WindowQuery)
    format: ReportFormat = ReportFormat.json


@dataclass(frozen=True)
class Rendered:
    """A report's body and its media type."""

    body: bytes
    media_type: str


@dataclass(frozen=True)
class ReferencePredictions:
    """The model's predictions on the reference rows, or why there are none; a failure
    that may pass (queue_manager down) must not be cached."""

    values: pd.Series | None
    model: dict[str, Any]
    cacheable: bool = True


class ReportService:
    """Builds reports and keeps the latest in an LRU cache keyed by the request and a
    fingerprint of the rows it resolved to."""

    def __init__(self, sources: Sources, models: Models, *, min_rows: int, cache_size: int):
        self.sources = sources
        self.models = models
        self.min_rows = min_rows
        self.cache: LruCache[Rendered] = LruCache(cache_size)

    async def report(self, name: str, request: ReportRequest) -> tuple[Rendered, bool]:
        """The report and whether it came from the cache."""
        use_case = await self.sources.use_case(name)
        if request.kind in reports.NEEDS_LABELS and use_case.target is None:
            raise errors.InvalidInput(f"{request.kind.value} needs a target; {name!r} has none")
        current, reference = await asyncio.gather(
            self.sources.production(use_case, request.window),
            self.sources.reference(use_case, Table(request.reference.value)),
        )
        reference = before(use_case, reference, current)
        self._check_rows(use_case, request.kind, current, reference)
        data = await asyncio.to_thread(fingerprint, current.frame, reference.frame)
        key = (name, request, data)
        cached = self.cache.get(key)
        if cached is not None:
            return cached, True
        predictions = await self._reference_predictions(use_case, request.kind, current, reference)
        inputs = reports.Inputs(
            use_case, current.frame, reference.frame, predictions.values, predictions.model
        )
        header = _header(use_case, request, current, reference)
        body = await asyncio.to_thread(
            lambda: reports.render(reports.BUILDERS[request.kind](inputs), request.format, header)
        )
        rendered = Rendered(body, MEDIA_TYPES[request.format])
        if predictions.cacheable:
            self.cache.put(key, rendered)
        return rendered, False

    def _check_rows(
        self, use_case: UseCase, kind: ReportKind, current: Window, reference: Window
    ) -> None:
        if current.rows < self.min_rows:
            raise errors.InvalidInput(
                f"too little data: {current.rows} production row(s) in the window, a report "
                f"needs at least {self.min_rows} (MONITORING_MIN_ROWS)"
            )
        if reference.rows < self.min_rows:
            raise errors.InvalidInput(
                f"too little data: the {reference.table} table has {reference.rows} row(s), "
                f"a report needs at least {self.min_rows} to compare with"
            )
        if kind in reports.NEEDS_LABELS and labelled(use_case, current.frame).empty:
            raise errors.InvalidInput(
                f"no labelled rows: none of the {current.rows} production rows in the window "
                f"has its true {_target_name(use_case)} yet, and {kind.value} needs them"
            )

    async def _reference_predictions(
        self, use_case: UseCase, kind: ReportKind, current: Window, reference: Window
    ) -> ReferencePredictions:
        if kind not in reports.NEEDS_MODEL:
            return ReferencePredictions(None, {})
        try:
            model = await self.models.bound(use_case.name, current.frame)
            values = await asyncio.to_thread(predict, use_case, model, reference.frame)
        except ModelUnavailable as exc:
            return ReferencePredictions(None, {"name": None, "reason": str(exc)})
        except errors.Unavailable as exc:
            if kind is ReportKind.model_performance:
                raise  # its reference metrics are the point of the report: answer 503
            log.warning("prediction drift without the model: %s", exc.detail)
            reason = f"queue_manager unavailable: {exc.detail}"
            return ReferencePredictions(None, {"name": None, "reason": reason}, cacheable=False)
        return ReferencePredictions(values, {"name": model.label, "reason": None})


def predict(use_case: UseCase, model: LoadedModel, frame: pd.DataFrame) -> pd.Series:
    """The model's predictions on the rows, checked and typed as a worker stores them
    (gits_ml.modeling.predict: values of the prediction column's type) and then as
    the production rows' predictions are read (frames.typed), or `ModelUnavailable` when
    it cannot make them (a feature it needs is missing, its pipeline rejects the rows,
    or it predicts values its use case cannot hold)."""
    return scored(use_case, model, frame)[0]


def scored(
    use_case: UseCase, model: LoadedModel, frame: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """The model's predictions on the rows as `predict` gives them, and each row's score
    as a worker stores it in `prediction_score` (floats; NaN for a regression); raises
    as `predict`."""
    try:
        labels, scores = model.outputs(use_case, frame)
    except KeyError as exc:
        raise ModelUnavailable(f"model {model.label} cannot predict the rows: {exc!r}") from exc
    except modeling.ModelFailed as exc:
        raise ModelUnavailable(f"model {model.label} cannot predict the rows: {exc}") from exc
    return typed(labels, kinds(use_case)[PREDICTION]), scores


def _header(
    use_case: UseCase, request: ReportRequest, current: Window, reference: Window
) -> dict[str, Any]:
    return {
        "use_case": use_case.name,
        "kind": request.kind.value,
        "generated_at": datetime.now(UTC).isoformat(),
        "reference": {"table": reference.table, "rows": reference.rows},
        "current": {
            "window": request.window.describe(),
            "rows": current.rows,
            "labelled_rows": len(labelled(use_case, current.frame)),
            "start": current.start,
            "end": current.end,
            "truncated": current.truncated,
        },
    }


def _target_name(use_case: UseCase) -> str:
    return use_case.target.name if use_case.target is not None else "target"
