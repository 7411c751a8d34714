"""One batch of deliveries, end to end: record the jobs, predict, store the predictions,
finish the jobs, and say for each delivery whether to ack, dead-letter or retry it.
Knows nothing of AMQP; the consumer carries out what it decides."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import pandas as pd

from gits_common import errors
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.lifecycle import pause
from gits_common.schemas import SensorRecord, Table
from workers.models import LoadedModel, ModelCache, NoModel
from workers.predict import Poison, features_frame, job_id, parse, payload, predict

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outcome(StrEnum):
    """What to do with a delivery once its batch is handled."""

    ack = "ack"  # stored, or already stored before a redelivery
    dead_letter = "dead_letter"  # can never succeed: reason on its job
    retry = "retry"  # a dependency was down: return it to the queue


@dataclass(frozen=True)
class Delivery:
    """The parts of a broker message the handler needs."""

    body: bytes
    message_id: str | None
    routing_key: str


@dataclass
class _Item:
    delivery: Delivery
    job_id: str
    readings: list[SensorRecord] = field(default_factory=list)
    reason: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


class Handler:
    """Handles batches for one service with the clients and model cache it is given."""

    def __init__(
        self,
        *,
        service: str,
        worker_id: str,
        queue_manager: QueueManagerClient,
        ml_data: MlDataClient,
        models: ModelCache,
        retry_attempts: int,
        retry_base_delay: float,
        stop: asyncio.Event,
    ) -> None:
        self.service, self.worker_id = service, worker_id
        self._qm, self._ml, self.models = queue_manager, ml_data, models
        self._attempts, self._base_delay, self._stop = retry_attempts, retry_base_delay, stop

    async def handle(self, deliveries: list[Delivery]) -> list[Outcome]:
        """Outcomes in delivery order. When a dependency stays unavailable through every
        retry, the messages are dead-lettered with that reason on their jobs (replay them
        with `python -m workers --replay-dead-letters`); while the worker is stopping
        they are given back to the queue instead."""
        items = [self._parse(d) for d in deliveries]
        try:
            return await self._handle(items)
        except errors.Unavailable as exc:
            if self._stop.is_set():
                return [Outcome.retry] * len(items)
            reason = f"gave up after {self._attempts} attempts: {exc.detail}"
            log.error("dead-lettering %d message(s): %s", len(items), reason)
            for item in items:
                item.reason = reason
            with contextlib.suppress(errors.GitsError):  # queue_manager may be what is down
                await self._qm.create_jobs([self._job(i) for i in items])
                await self._qm.update_jobs([_finish(self.service, i, None) for i in items])
            return [Outcome.dead_letter] * len(items)

    async def _handle(self, items: list[_Item]) -> list[Outcome]:
        stored = await self._retrying(self._qm.create_jobs, [self._job(i) for i in items])
        # A redelivered message whose job finished was stored already; a failed one is
        # tried again (a replayed dead letter, or a fault that has passed).
        done = {job["message_id"] for job in stored if job["last_status"] == "finished"}
        todo = [i for i in items if i.job_id not in done]
        model = await self._model(todo) if todo else None
        if model is not None:
            await self._predict_and_store(model, todo)
        if todo:
            label = model.label if model else None
            await self._retrying(
                self._qm.update_jobs, [_finish(self.service, i, label) for i in todo]
            )
        return [Outcome.dead_letter if i.reason else Outcome.ack for i in items]

    def _parse(self, delivery: Delivery) -> _Item:
        item = _Item(delivery, job_id(delivery.body, delivery.message_id))
        try:
            item.readings = parse(delivery.body).readings()
        except Poison as exc:
            item.reason = str(exc)
        return item

    async def _model(self, items: list[_Item]) -> LoadedModel | None:
        try:
            return await self._retrying(self.models.current)
        except NoModel as exc:
            for item in items:
                item.reason = item.reason or str(exc)
            return None

    def _job(self, item: _Item) -> dict[str, Any]:
        return {
            "message_id": item.job_id,
            "service": self.service,
            "payload": payload(item.delivery.body),
            "routing_key": item.delivery.routing_key,
            "worker": self.worker_id,
            "start_date": datetime.now(UTC).isoformat(),
        }

    async def _predict_and_store(self, model: LoadedModel, items: list[_Item]) -> None:
        frames = []
        for item in (i for i in items if i.reason is None):
            try:
                frames.append((item, features_frame(model, item.readings)))
            except Poison as exc:
                item.reason = str(exc)
        if not frames:
            return
        joined = pd.concat([f for _, f in frames], ignore_index=True)
        labels, scores = await asyncio.to_thread(predict, model, joined)
        at = 0
        for item, frame in frames:
            item.rows = [
                _row(model, reading, features, labels[at + k], scores[at + k])
                for k, (reading, features) in enumerate(
                    zip(item.readings, frame.to_dict("records"), strict=True)
                )
            ]
            at += len(frame)
        await self._store([i for i, _ in frames], model)

    async def _store(self, items: list[_Item], model: LoadedModel) -> None:
        """Insert every row in one call; if the API refuses the batch, insert message by
        message so that only the bad message fails."""
        name = model.use_case.name
        rows = [row for item in items for row in item.rows]
        try:
            await self._retrying(self._ml.insert_rows, name, Table.production, rows)
        except (errors.InvalidInput, errors.NotFound, errors.TooLarge) as batch_error:
            if len(items) == 1:
                items[0].reason = f"ml_data_api refused the prediction: {batch_error.detail}"
                return
            for item in items:
                await self._store([item], model)

    async def _retrying(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`call(*args)`, tried again with doubling delays while its service is
        unavailable, until the attempts run out or the worker is stopping."""
        for attempt in range(1, self._attempts + 1):
            try:
                return await call(*args)
            except errors.Unavailable as exc:
                if attempt == self._attempts or self._stop.is_set():
                    raise
                delay = min(self._base_delay * 2 ** (attempt - 1), 30.0)
                log.warning(
                    "%s (attempt %d of %d, next in %.1fs)",
                    exc.detail,
                    attempt,
                    self._attempts,
                    delay,
                )
                await pause(self._stop, delay)
        raise AssertionError("unreachable")


def _row(
    model: LoadedModel,
    reading: SensorRecord,
    features: dict[str, Any],
    label: Any,
    score: float | None,
) -> dict[str, Any]:
    return {
        "message_id": reading.message_id,
        model.use_case.time_column: reading.timestamp.isoformat(),
        **features,
        "prediction": label,
        "prediction_score": score,
        "model_version": model.label,
    }


def _finish(service: str, item: _Item, model_label: str | None) -> dict[str, Any]:
    """The job update that closes an item: failed with its reason, or finished."""
    key = {"service": service, "message_id": item.job_id, "model_version": model_label}
    if item.reason is not None:
        return {**key, "last_status": "failed", "message": item.reason}
    result = [
        {
            "message_id": r["message_id"],
            "prediction": r["prediction"],
            "prediction_score": r["prediction_score"],
        }
        for r in item.rows
    ]
    return {
        **key,
        "last_status": "finished",
        "result": result,
        "message": "Results calculated successfully.",
    }
