"""What each task adds to monitoring: classification reports, an anomaly use case's flags
and events, and performance estimated before the labels arrive. Reads the rows through
ml_data_api and the bound model through queue_manager; the computing is in
performance, anomalies and estimation, run in threads."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gits_common import errors
from gits_common.monitoring import (
    AnomaliesRead,
    ClassificationRead,
    EstimatedRead,
    ModelRead,
    Reference,
    Thresholds,
)
from gits_common.schemas import Table, Task, UseCase
from gits_ml import modeling
from monitoring_api import anomalies, drift, estimation, performance
from monitoring_api.cache import LruCache
from monitoring_api.frames import (
    MODEL_VERSION,
    PREDICTION,
    PREDICTION_SCORE,
    Role,
    Window,
    before,
    buckets,
    fingerprint,
)
from monitoring_api.history import scored_rows
from monitoring_api.models import LoadedModel, Models, ModelUnavailable
from monitoring_api.service import scored
from monitoring_api.sources import Sources, WindowQuery

log = logging.getLogger(__name__)

POSITIVE_PROBABILITY = "positive_probability"
CONFIDENCE = "confidence"


@dataclass(frozen=True)
class Scored:
    """Reference rows and the bound model's predictions and scores on them."""

    window: Window
    model: LoadedModel
    labels: pd.Series
    scores: pd.Series


def needs(use_case: UseCase, *tasks: Task) -> None:
    """`Conflict` naming the task an endpoint needs, when the use case is of another."""
    if use_case.task not in tasks:
        wanted = " or ".join(t.value for t in tasks)
        raise errors.Conflict(
            f"this endpoint needs a use case of task {wanted}; {use_case.name!r} is of "
            f"task {use_case.task.value}"
        )


class TaskService:
    """The task-specific answers of monitoring_api; fitted estimators are kept in an LRU
    cache keyed by the use case, the model and a fingerprint of the reference rows."""

    def __init__(
        self,
        sources: Sources,
        models: Models,
        *,
        min_rows: int,
        cache_size: int,
    ) -> None:
        self.sources = sources
        self.models = models
        self.min_rows = min_rows
        self.fitted: LruCache[estimation.Estimator] = LruCache(cache_size)

    async def _scored_reference(self, use_case: UseCase, current: Window, table: Table) -> Scored:
        """The reference rows older than the window, scored by the bound model. Raises
        `ModelUnavailable`, or `Unavailable` when queue_manager is down."""
        reference = before(use_case, await self.sources.reference(use_case, table), current)
        model = await self.models.bound(use_case.name, current.frame)
        labels, scores = await asyncio.to_thread(scored, use_case, model, reference.frame)
        return Scored(reference, model, labels, scores)

    async def classification(
        self, name: str, query: WindowQuery, reference: Reference
    ) -> ClassificationRead:
        """Realised accuracy, macro and per-class precision, recall and F1, ROC AUC and
        the confusion matrix of the window's labelled rows, and the drift of the
        predicted probabilities against the model's on the reference rows. `Conflict`
        for a use case of another task, `InvalidInput` for a window without rows."""
        use_case = await self.sources.use_case(name)
        needs(use_case, Task.classification)
        current = nonempty(await self.sources.production(use_case, query))
        try:
            found = await self._scored_reference(use_case, current, Table(reference.value))
        except (ModelUnavailable, errors.Unavailable) as exc:
            plain = await self.sources.reference(use_case, Table(reference.value))
            body = await asyncio.to_thread(
                _classification, use_case, current.frame, before(use_case, plain, current).frame
            )
            model = ModelRead(name=None, reason=str(exc))
        else:
            body = await asyncio.to_thread(
                _classification,
                use_case,
                current.frame,
                found.window.frame,
                found.labels,
                found.scores,
            )
            model = ModelRead(name=found.model.label)
        window = {**query.describe(), "start": current.start, "end": current.end}
        return ClassificationRead.model_validate(
            {"use_case": name, "window": window, "model": model, **body}
        )

    async def anomalies(
        self,
        name: str,
        query: WindowQuery,
        *,
        limits: Thresholds,
        bucket_seconds: int,
        merge_seconds: float | None,
    ) -> AnomaliesRead:
        """The flagged share per time bucket, the flagged events, the whole window's
        rate against the use case's alert threshold (`limits.anomaly_rate`), the bound
        model's score threshold, and realised precision, recall and F1 of the labelled
        rows. `Conflict` for a use case of another task."""
        use_case = await self.sources.use_case(name)
        needs(use_case, Task.anomaly)
        current = nonempty(await self.sources.production(use_case, query))
        threshold, model = await self._threshold(use_case, current)
        merge = float(merge_seconds if merge_seconds is not None else 2 * bucket_seconds)
        frame = current.frame
        rates, events, realised = await asyncio.to_thread(
            lambda: (
                anomalies.rates(use_case, frame, bucket_seconds),
                anomalies.events(use_case, frame, merge),
                anomalies.flag_quality(use_case, frame),
            )
        )
        rows, flagged = sum(r.rows for r in rates), sum(r.flagged for r in rates)
        rate = flagged / rows if rows else None
        limit = limits.anomaly_rate
        return AnomaliesRead.model_validate(
            {
                "use_case": name,
                "window": {**query.describe(), "start": current.start, "end": current.end},
                "model_version": _newest_model(frame),
                "threshold": threshold,
                "model": model,
                "bucket_seconds": bucket_seconds,
                "merge_seconds": merge,
                "rows": rows,
                "flagged": flagged,
                "anomaly_rate": rate,
                "alert_threshold": limit,
                "alerting": rate is not None and limit is not None and rate > limit,
                "rate": [{**vars(r), "rate": r.rate} for r in rates],
                "events": events,
                "realised": realised,
            }
        )

    async def _threshold(
        self, use_case: UseCase, current: Window
    ) -> tuple[float | None, ModelRead]:
        """The bound model's score threshold, or None and why."""
        try:
            model = await self.models.bound(use_case.name, current.frame)
        except (ModelUnavailable, errors.Unavailable) as exc:
            return None, ModelRead(name=None, reason=str(exc))
        threshold = modeling.anomaly_threshold(model.pipeline)
        reason = None if threshold is not None else "the model has no score threshold"
        return threshold, ModelRead(name=model.label, reason=reason)

    async def estimated(
        self, name: str, query: WindowQuery, *, bucket_seconds: int
    ) -> EstimatedRead:
        """Performance estimated per time bucket (CBPE for classification, DLE for
        regression) beside the realised one where labels came; an anomaly use case, or
        one whose model cannot be had, answers without an estimate and says why.
        `Unavailable` when queue_manager is down."""
        use_case = await self.sources.use_case(name)
        current = nonempty(await self.sources.production(use_case, query))
        base: dict[str, Any] = {
            "use_case": name,
            "task": use_case.task.value,
            "method": None,
            "reason": None,
            "metrics": [],
            "window": {**query.describe(), "start": current.start, "end": current.end},
            "bucket_seconds": bucket_seconds,
            "reference": None,
            "estimated": None,
            "realised": None,
            "buckets": [],
            "model": ModelRead(name=None),
        }
        if use_case.task not in estimation.ESTIMATED:
            reason = (
                "anomaly use cases have none: their flags carry no probability of being "
                "right to calibrate, nor a loss to learn; their realised precision and "
                f"recall are at /monitoring_api/use_cases/{name}/anomalies"
            )
            return EstimatedRead.model_validate({**base, "reason": reason})
        try:
            estimator, label = await self.estimator(use_case, current)
        except (ModelUnavailable, ValueError) as exc:
            model = ModelRead(name=None, reason=str(exc))
            return EstimatedRead.model_validate({**base, "reason": str(exc), "model": model})
        body = await asyncio.to_thread(
            _estimates, use_case, estimator, current.frame, bucket_seconds
        )
        return EstimatedRead.model_validate({**base, **body, "model": ModelRead(name=label)})

    async def estimator(
        self, use_case: UseCase, current: Window
    ) -> tuple[estimation.Estimator, str]:
        """The use case's estimator and the model it estimates, fitted on the testing
        table's rows (held out from training: the model's confidence there is what it
        is in production) scored by the bound model, or, with fewer than
        MONITORING_MIN_ROWS of them, on the training rows older than the window.
        Raises `ModelUnavailable`, `Unavailable`, or ValueError for too few rows."""
        found = await self._scored_reference(use_case, current, Table.testing)
        if found.window.rows < self.min_rows:
            found = await self._scored_reference(use_case, current, Table.training)
        if found.window.rows < self.min_rows:
            raise ValueError(
                f"too little data: an estimator needs {self.min_rows} reference rows "
                f"(MONITORING_MIN_ROWS); the {found.window.table} table has {found.window.rows}"
            )
        data = await asyncio.to_thread(fingerprint, found.window.frame)
        key = (use_case.name, found.model.label, data)
        cached = self.fitted.get(key)
        if cached is None:
            cached = await asyncio.to_thread(
                estimation.fit,
                use_case,
                found.window.frame,
                found.labels,
                found.scores,
                features=found.model.features,
                table=found.window.table,
            )
            self.fitted.put(key, cached)
        return cached, found.model.label


def nonempty(current: Window) -> Window:
    """The window, or `InvalidInput` (422) when it holds no production row: there is
    nothing to report on (yet)."""
    if current.rows == 0:
        raise errors.InvalidInput(
            "no production row in the window: choose a window with predictions in it, or "
            "wait for the first ones"
        )
    return current


def _classification(
    use_case: UseCase,
    current: pd.DataFrame,
    reference: pd.DataFrame,
    labels: pd.Series | None = None,
    scores: pd.Series | None = None,
) -> dict[str, Any]:
    """ClassificationRead's metrics (blocking): `reference` the reference rows, `labels`
    and `scores` the model's outputs on them (None when it could not be had)."""
    assert use_case.target is not None  # a classification use case has one
    target = use_case.target.name
    positive = performance.positive_class(reference[target]) if not reference.empty else None
    done = scored_rows(use_case, current)
    names, found = performance.per_class(done[target], done[PREDICTION])
    macro: dict[str, float | None] = dict.fromkeys(("accuracy", "precision", "recall", "f1"))
    if not done.empty:
        macro = performance.classification(done[target], done[PREDICTION])
    auc, auc_reason = performance.scored_auc(done, target, positive)
    drift_found, drift_reason = _probability_drift(current, positive, labels, scores)
    return {
        "rows": len(current),
        "labelled_rows": len(done),
        "classes": names,
        "positive_class": positive,
        **macro,
        "roc_auc": auc,
        "roc_auc_reason": auc_reason,
        "per_class": [
            {
                "label": label,
                **{m: float(found[m][i]) for m in ("precision", "recall", "f1")},
                "support": int(found["support"][i]),
            }
            for i, label in enumerate(names)
        ],
        "confusion_matrix": {"labels": names, "counts": found["confusion"].tolist()},
        "prediction_drift": drift_found,
        "prediction_drift_reason": drift_reason,
    }


def _probabilities(
    labels: pd.Series, scores: pd.Series, positive: Any | None
) -> tuple[str, pd.Series]:
    """The column compared for probability drift: binary, each row's positive-class
    probability; multiclass, the probability of its predicted label (confidence)."""
    keep = scores.notna() & labels.notna()
    if positive is None:
        return CONFIDENCE, scores[keep].astype(float)
    values = performance.positive_probability(labels[keep], scores[keep].to_numpy(float), positive)
    return POSITIVE_PROBABILITY, pd.Series(values)


def _probability_drift(
    current: pd.DataFrame,
    positive: Any | None,
    labels: pd.Series | None,
    scores: pd.Series | None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Drift of the window's predicted probabilities against the model's on the
    reference rows, or None and why."""
    if labels is None or scores is None:
        return None, "the model could not be had to score the reference rows"
    if PREDICTION_SCORE not in current or current[PREDICTION_SCORE].notna().sum() == 0:
        return None, "no production row of the window has a prediction_score"
    column, now = _probabilities(current[PREDICTION], current[PREDICTION_SCORE], positive)
    _, then = _probabilities(labels, scores, positive)
    if then.empty:
        return None, "the model gave no probability on the reference rows"
    found = drift.measure(
        pd.DataFrame({column: now.to_numpy()}),
        pd.DataFrame({column: then.to_numpy()}),
        {column: Role.numerical},
        full=False,
    )
    method = found.methods[column]
    score = found.scores[column]
    described = method.describe()
    return {
        "column": column,
        "score": score,
        "drifted": method.drifted(score),
        "method": described["method"],
        "kind": described["kind"],
        "threshold": described["threshold"],
        "current_mean": float(now.mean()),
        "reference_mean": float(then.mean()),
        "current_rows": len(now),
        "reference_rows": len(then),
    }, None


def _estimates(
    use_case: UseCase, estimator: estimation.Estimator, frame: pd.DataFrame, bucket_seconds: int
) -> dict[str, Any]:
    """EstimatedRead's estimates, per bucket and of the whole window (blocking): each
    usable row's part is computed once, and summed per bucket."""
    rows = estimator.usable(frame)
    parts = estimator.parts(rows)
    position = pd.Series(np.arange(len(rows)), index=rows.index)
    metrics = list(estimation.ESTIMATED[use_case.task])
    found = []
    for bucket in buckets(use_case, rows, bucket_seconds):
        done = scored_rows(use_case, bucket.frame)
        found.append(
            {
                "start": bucket.start,
                "end": bucket.end,
                "rows": len(bucket.frame),
                "labelled_rows": len(done),
                "estimated": estimator.combine(parts[position[bucket.frame.index].to_numpy()]),
                "realised": _realised(use_case, done, metrics),
            }
        )
    return {
        "method": estimator.method,
        "metrics": metrics,
        "reference": {
            "table": estimator.table,
            "rows": estimator.rows,
            **estimator.fitted.reference,
        },
        "estimated": estimator.combine(parts),
        "realised": _realised(use_case, scored_rows(use_case, rows), metrics),
        "buckets": found,
    }


def _realised(
    use_case: UseCase, done: pd.DataFrame, metrics: list[str]
) -> dict[str, float | None] | None:
    """The realised metrics of labelled rows, those the estimate names; None for none."""
    if done.empty or use_case.target is None:
        return None
    realised = performance.evaluate(use_case.task, done[use_case.target.name], done[PREDICTION])
    return {name: realised.get(name) for name in metrics}


def _newest_model(frame: pd.DataFrame) -> str | None:
    """The model_version of the window's newest row (rows come oldest first)."""
    if frame.empty or MODEL_VERSION not in frame:
        return None
    value = frame[MODEL_VERSION].iloc[-1]
    return None if pd.isna(value) else str(value)
