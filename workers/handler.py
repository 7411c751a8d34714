"""One batch of deliveries, end to end: predict, store the predictions, record the jobs
(one request a batch, through the journal), and say for each delivery whether to ack it,
dead-letter it (with its reason) or give it back to the queue. Knows nothing of AMQP;
the consumer carries out what it decides.

queue_manager is off the critical path: the model is cached, and job records wait in
the journal while queue_manager is out of reach, so predictions go on being stored.

Two kinds of failure, as in dramatiq: a dependency out of reach (a refused connection,
a timeout, a 502/503/504: `errors.Unavailable`) is retried with backoff; any other
refusal is about the input, so the batch is split until the messages that cause it are
found, the others are stored at once, and only those are dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from gits_common import errors
from gits_common.amqp import DELIVERY_LIMIT
from gits_common.clients import MlDataClient
from gits_common.lifecycle import pause, stop_when_stopped
from gits_common.logs import log_context
from gits_common.schemas import SensorRecord, Table
from gits_ml.modeling import ModelFailed
from workers.journal import Journal
from workers.messages import Message, read_message
from workers.metrics import DeadLetterKind, WorkerMetrics
from workers.models import LoadedModel, ModelCache, NoModel
from workers.predict import Poison, features_frame, typed_features

log = logging.getLogger(__name__)
T = TypeVar("T")
# A job's result lists at most this many predictions (a batch message may hold 10,000:
# they are all in the production table).
RESULT_MAX_RECORDS = 100


class ModelTimedOut(Exception):
    """The model overran its time on a batch; its thread goes on, so the worker must be
    replaced."""


class StuckModel(Exception):
    """An earlier call of this worker's model never ended: no more calls are made here,
    and the batch goes back to the queue for another worker."""


class Outcome(StrEnum):
    """What to do with a delivery once its batch is handled."""

    ack = "ack"  # stored, or already stored before a redelivery
    dead_letter = "dead_letter"  # can never succeed: dead-lettered with its reason
    retry = "retry"  # the worker is stopping mid-outage: return it to the queue


@dataclass(frozen=True)
class Delivery:
    """The parts of a broker message the handler needs."""

    body: bytes
    message_id: str | None
    routing_key: str
    deliveries_before: int = 0  # RabbitMQ's x-delivery-count: earlier unsettled deliveries


@dataclass(frozen=True)
class Settlement:
    """What became of a delivery, and why when it is dead-lettered."""

    outcome: Outcome
    reason: str | None = None
    kind: DeadLetterKind | None = None  # what kind of reason, for the metrics


@dataclass
class _Item:
    delivery: Delivery
    message: Message
    reason: str | None = None
    kind: DeadLetterKind | None = None  # set with `reason`
    features: list[dict[str, Any]] | None = None  # typed, one dict a reading
    rows: list[dict[str, Any]] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Ids whose row was stored before (a redelivery, or another message's id): that row
    # is kept as it was, and the job says so instead of claiming this prediction.
    kept: list[str] = field(default_factory=list)

    @property
    def job_id(self) -> str:
        return self.message.job_id

    @property
    def readings(self) -> list[SensorRecord]:
        return self.message.readings


class Handler:
    """Handles batches for one service with the clients and model cache it is given."""

    def __init__(
        self,
        *,
        service: str,
        worker_id: str,
        ml_data: MlDataClient,
        models: ModelCache,
        journal: Journal,
        retry_attempts: int,
        retry_base_delay: float,
        max_message_bytes: int,
        stop: asyncio.Event,
        predict_seconds: float = 30.0,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.service, self.worker_id = service, worker_id
        self._ml, self.models, self.journal = ml_data, models, journal
        self._attempts, self._base_delay = retry_attempts, retry_base_delay
        self._max_bytes, self._stop = max_message_bytes, stop
        self._predict_seconds = predict_seconds
        self.metrics = metrics or WorkerMetrics(service)
        # One thread for the model: a call that overruns is left behind, and the worker
        # is then replaced (`wedged`), since a thread cannot be stopped.
        self._predicting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        # Batches in flight call the model one after the other, so that each call's time
        # limit counts only its own time, not its wait behind another batch's call.
        self._calling = asyncio.Lock()
        self.wedged = False

    async def handle(self, deliveries: list[Delivery]) -> list[Settlement]:
        """Settlements in delivery order. When a dependency stays unavailable through
        every retry, the messages are dead-lettered with that reason (replay them with
        `python -m workers --replay-dead-letters`); while the worker is stopping they
        are given back to the queue instead."""
        if self.wedged:
            return [Settlement(Outcome.retry)] * len(deliveries)
        items = [self._item(d) for d in deliveries]
        try:
            await self._narrowed_handle(items)
        except StuckModel:
            return [Settlement(Outcome.retry)] * len(items)
        except ModelTimedOut as exc:
            # The model's thread cannot be stopped: settle what can be, and let the
            # worker be replaced (`_call` set `wedged`). Alone, the message is the cause.
            if len(items) > 1:
                return [Settlement(Outcome.retry)] * len(items)
            items[0].reason, items[0].kind = str(exc), DeadLetterKind.model_timeout
            await self.journal.record([self._record(items[0], None)], self._stop)
        except errors.Unavailable as exc:
            if self._stop.is_set():
                return [Settlement(Outcome.retry)] * len(items)
            reason = f"gave up after {self._attempts} attempts: {exc.detail}"
            log.error("dead-lettering %d message(s): %s", len(items), reason)
            for item in items:
                item.reason = item.reason or reason
                item.kind = item.kind or DeadLetterKind.unavailable
            await self.journal.record([self._record(i, None) for i in items], self._stop)
        return [
            Settlement(Outcome.dead_letter, i.reason, i.kind)
            if i.reason
            else Settlement(Outcome.ack)
            for i in items
        ]

    def _item(self, delivery: Delivery) -> _Item:
        item = _Item(
            delivery, read_message(delivery.body, delivery.message_id, max_bytes=self._max_bytes)
        )
        item.reason = item.message.reason
        item.kind = DeadLetterKind.bad_message if item.reason else None
        if delivery.deliveries_before >= DELIVERY_LIMIT - 1:
            item.kind = item.kind or DeadLetterKind.delivery_limit
            item.reason = item.reason or (
                f"delivered {delivery.deliveries_before} times before without being settled "
                "(a worker died or lost its connection while handling it each time); not "
                "tried again, so that it cannot stop another worker"
            )
        return item

    async def _narrowed_handle(self, items: list[_Item]) -> None:
        """`_handle`, with any failure that is neither an outage nor a stuck model
        narrowed down, by halving, to the messages that cause it: those are dead-lettered
        with what went wrong, the others handled as usual. No message stops the worker."""
        try:
            await self._handle(items)
        except (errors.Unavailable, ModelTimedOut, StuckModel):
            raise
        except Exception as exc:
            if len(items) == 1:
                with log_context(message_id=items[0].delivery.message_id):
                    log.exception("message %s failed the worker", items[0].job_id)
                items[0].reason = f"the worker failed on this message ({errors.said(exc)})"
                items[0].kind = DeadLetterKind.worker_error
                await self.journal.record([self._record(items[0], None)], self._stop)
                return
            half = len(items) // 2
            await self._narrowed_handle(items[:half])
            await self._narrowed_handle(items[half:])

    async def _handle(self, items: list[_Item]) -> None:
        model = await self._model(items) if any(i.reason is None for i in items) else None
        if model is not None:
            self.metrics.model_in_use(use_case=model.use_case.name, version=model.label)
            await self._predict_and_store(model, items)
        label = model.label if model else None
        await self.journal.record([self._record(i, label) for i in items], self._stop)

    async def _model(self, items: list[_Item]) -> LoadedModel | None:
        try:
            return await self._retrying(self.models.current)
        except NoModel as exc:
            for item in items:
                item.reason = item.reason or str(exc)
                item.kind = item.kind or DeadLetterKind.no_model
            return None

    def _record(self, item: _Item, model_label: str | None) -> dict[str, Any]:
        """The job of an item in its final state: failed with its reason, or finished with
        (the first RESULT_MAX_RECORDS of) its predictions."""
        record = {
            "message_id": item.job_id,
            "service": self.service,
            "payload": item.message.payload,
            "routing_key": item.delivery.routing_key[:255],
            "worker": self.worker_id,
            "start_date": item.started.isoformat(),
            "end_date": datetime.now(UTC).isoformat(),
            "model_version": model_label,
        }
        if item.reason is not None:
            return {**record, "last_status": "failed", "message": item.reason}
        fresh = [r for r in item.rows if r["message_id"] not in item.kept]
        result = [
            {
                "message_id": r["message_id"],
                "prediction": r["prediction"],
                "prediction_score": r["prediction_score"],
            }
            for r in fresh[:RESULT_MAX_RECORDS]
        ]
        more = len(fresh) - len(result)
        note = f" ({more} more in the production table)" if more > 0 else ""
        if item.kept:
            note += (
                f"; already stored, kept as it was: {', '.join(item.kept[:10])}"
                f"{' ...' if len(item.kept) > 10 else ''} (a redelivery, or another "
                "message's id)"
            )
        return {
            **record,
            "last_status": "finished",
            "result": result,
            "message": f"Results calculated successfully.{note}",
        }

    async def _predict_and_store(self, model: LoadedModel, items: list[_Item]) -> None:
        scoring = []
        for item in (i for i in items if i.reason is None):
            try:
                item.features = typed_features(model, item.readings)
                scoring.append(item)
            except Poison as exc:
                item.reason, item.kind = str(exc), DeadLetterKind.bad_features
        if not scoring:
            return
        failures = await self._predict(model, scoring)
        if failures == len(scoring):
            await self.models.unusable(
                model, f"it failed on every message of a batch: {scoring[-1].reason}"
            )
        elif failures < len(scoring):
            await self.models.usable(model)
        stored, refused = await self._narrowed(
            functools.partial(
                self.metrics.timing(self.metrics.store_seconds, self._ml.insert_rows),
                model.use_case.name,
                Table.production,
            ),
            [i for i in scoring if i.reason is None],
            lambda i: i.rows,
            flatten=True,
        )
        for item, detail in refused:
            item.reason = f"ml_data_api refused the prediction: {detail}"
            item.kind = DeadLetterKind.refused
        for item, answer in stored:
            kept = set(answer.get("skipped_ids", [])) & {r["message_id"] for r in item.rows}
            if kept:
                item.kept = sorted(kept)

    async def _predict(self, model: LoadedModel, items: list[_Item]) -> int:
        """Predict every item's rows in one call; when the model fails, halve the batch
        until the messages it fails on are found. Returns how many failed."""
        # One frame for the whole batch, built once (a frame a message cost more than
        # the model's own predict: py-spy, issue #12).
        frame = features_frame(model, [f for i in items for f in i.features or ()])
        try:
            predictions = await self._call(model, frame)
            self.metrics.predicted(len(frame))
        except ModelFailed as exc:
            if len(items) == 1:
                items[
                    0
                ].reason = f"model {model.label} failed on this message ({exc.check}): {exc.reason}"
                items[0].kind = DeadLetterKind.model_failed
                return 1
            half = len(items) // 2
            return await self._predict(model, items[:half]) + await self._predict(
                model, items[half:]
            )
        at = 0
        for item in items:
            assert item.features is not None
            item.rows = [
                _row(
                    model, reading, features, predictions.labels[at + k], predictions.scores[at + k]
                )
                for k, (reading, features) in enumerate(
                    zip(item.readings, item.features, strict=True)
                )
            ]
            at += len(item.features)
        return 0

    async def _call(self, model: LoadedModel, frame: Any) -> Any:
        """The model's predictions for the frame, in its thread, within
        WORKER_PREDICT_SECONDS of the call's start. `ModelTimedOut` (and the worker is
        wedged) when it overruns; `StuckModel` once an earlier call has."""
        async with self._calling:
            if self.wedged:
                raise StuckModel(f"an earlier call of model {model.label} never ended")
            call = asyncio.get_running_loop().run_in_executor(
                self._predicting, model.predict, frame
            )
            try:
                timed = self.metrics.timing(self.metrics.predict_seconds, asyncio.wait_for)
                return await timed(call, self._predict_seconds)
            except TimeoutError:
                self.wedged = True
                raise ModelTimedOut(
                    f"model {model.label} took longer than {self._predict_seconds:g} s on "
                    "this message (WORKER_PREDICT_SECONDS); the worker is replaced to stop it"
                ) from None

    async def _narrowed(
        self,
        call: Callable[[list[Any]], Awaitable[Any]],
        items: list[_Item],
        part: Callable[[_Item], Any],
        *,
        flatten: bool = False,
    ) -> tuple[list[tuple[_Item, Any]], list[tuple[_Item, str]]]:
        """`call` on every item's part (or parts, with `flatten`) in one request,
        retried while its API is out of reach (`Unavailable` once the retries run out).
        When the API refuses the batch, it is halved until the items it refuses are
        found. Returns (item, its answer) for the items taken, when `call` answers one
        value per part, and (item, the API's reason) for those refused."""
        if not items:
            return [], []
        parts = [p for i in items for p in part(i)] if flatten else [part(i) for i in items]
        try:
            answers = await self._retrying(call, parts)
        except errors.Unavailable:
            raise
        except errors.GitsError as exc:
            if len(items) == 1:
                return [], [(items[0], exc.detail)]
            half = len(items) // 2
            taken, refused = await self._narrowed(call, items[:half], part, flatten=flatten)
            more_taken, more_refused = await self._narrowed(
                call, items[half:], part, flatten=flatten
            )
            return taken + more_taken, refused + more_refused
        if flatten:  # one answer for the whole call
            return [(item, answers) for item in items], []
        return list(zip(items, answers, strict=True)), []

    async def _retrying(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`call(*args)`, tried again with doubling delays while its service is
        unavailable, until the attempts run out or the worker is stopping."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(errors.Unavailable),
            stop=stop_after_attempt(self._attempts) | stop_when_stopped(self._stop),
            wait=wait_exponential(multiplier=self._base_delay, max=30.0),
            before_sleep=self.metrics.counting_retries(before_sleep_log(log, logging.WARNING)),
            sleep=functools.partial(pause, self._stop),  # wakes up when the worker stops
            reraise=True,
        )
        return await retrying(call, *args)


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
