"""What a worker replica counts and times, for Prometheus (served on WORKER_METRICS_PORT
by `python -m workers`). Every series has the `service` label (SERVICE_NAME), so the
replicas of one service add up in a query; none carries a message id."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

T = TypeVar("T")

# Messages a batch may hold: 1 (a lone message) up to WORKER_BATCH_SIZE (500 by default).
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
# Seconds of a model call, a store request, or a message from arrival to settlement.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Settled(StrEnum):
    """The `outcome` label of gits_worker_messages_total."""

    stored = "stored"  # acked: its predictions (or those stored before) are in the table
    dead_lettered = "dead_lettered"  # can never succeed: sent to the dead-letter queue
    requeued = "requeued"  # given back to the queue (the worker is stopping or stuck)


class DeadLetterKind(StrEnum):
    """The `reason` label of gits_worker_dead_letters_total: the kind of reason, never
    its text (which names message ids and values)."""

    bad_message = "bad_message"  # not JSON, too large, not a sensor message
    bad_features = "bad_features"  # features the use case cannot type
    delivery_limit = "delivery_limit"  # delivered too often without being settled
    no_model = "no_model"  # no usable model bound to the service
    model_failed = "model_failed"  # the model raised on this message
    model_timeout = "model_timeout"  # the model overran WORKER_PREDICT_SECONDS
    refused = "refused"  # ml_data_api refused the prediction row
    unavailable = "unavailable"  # a dependency stayed out of reach through every retry
    worker_error = "worker_error"  # anything else the worker failed on


class WorkerMetrics:
    """A replica's series, in `registry` (a private one by default: a handler built in a
    test counts without serving anything). Every label value exists from the start, at
    0, so that a rate over the first event is not lost."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        self._build(self.registry)
        for outcome in Settled:
            self.messages.labels(service, outcome)
        for kind in DeadLetterKind:
            self.dead_letters.labels(service, kind)
        for counter in (self.redeliveries, self.retries, self.predictions):
            counter.labels(service)

    def _build(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, ["service", *labels], registry=registry)

        self.messages = counter(
            "gits_worker_messages_total", "Messages settled, by outcome", "outcome"
        )
        self.dead_letters = counter(
            "gits_worker_dead_letters_total",
            "Messages the broker confirmed in the dead-letter queue, by kind of reason",
            "reason",
        )
        self.redeliveries = counter(
            "gits_worker_redeliveries_total",
            "Deliveries RabbitMQ had made before (a worker died or lost its connection "
            "holding them), moved to the quarantine queue",
        )
        self.retries = counter(
            "gits_worker_retries_total",
            "Calls tried again because queue_manager or ml_data_api was out of reach",
        )
        self.predictions = counter("gits_worker_predictions_total", "Rows the model predicted")
        self._histograms(registry)
        self.model = Info(
            "gits_worker_model",
            "The model version the replica predicts with",
            ["service"],
            registry=registry,
        )

    def _histograms(self, registry: CollectorRegistry) -> None:
        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, ["service"], buckets=buckets, registry=registry)

        self.batch_size = histogram(
            "gits_worker_batch_size_messages", "Messages handled together", BATCH_BUCKETS
        )
        self.predict_seconds = histogram(
            "gits_worker_predict_seconds", "Seconds of one model call on a batch", LATENCY_BUCKETS
        )
        self.store_seconds = histogram(
            "gits_worker_store_seconds",
            "Seconds of one request storing prediction rows in ml_data_api",
            LATENCY_BUCKETS,
        )
        self.job_seconds = histogram(
            "gits_worker_job_seconds",
            "Seconds from the start of a message's batch until it was acked or dead-lettered",
            LATENCY_BUCKETS,
        )

    def settled(self, outcome: Settled, *, seconds: float | None = None) -> None:
        """One message settled, `seconds` after its batch was started (observed for a
        message acked or dead-lettered, not for one given back)."""
        self.messages.labels(self.service, outcome).inc()
        if seconds is not None and outcome is not Settled.requeued:
            self.job_seconds.labels(self.service).observe(seconds)

    def batch(self, size: int) -> None:
        """A batch of `size` messages taken to be handled."""
        self.batch_size.labels(self.service).observe(size)

    def predicted(self, rows: int) -> None:
        """The model predicted `rows` rows."""
        self.predictions.labels(self.service).inc(rows)

    def redelivered(self) -> None:
        """A redelivery moved to the quarantine queue."""
        self.redeliveries.labels(self.service).inc()

    def counting_retries(self, then: Callable[[Any], None]) -> Callable[[Any], None]:
        """A tenacity `before_sleep` that counts the retry, then calls `then`."""

        def before_sleep(state: Any) -> None:
            self.retries.labels(self.service).inc()
            then(state)

        return before_sleep

    def dead_lettered(self, kind: str | None) -> None:
        """One dead letter confirmed by the broker."""
        label = kind if kind in DeadLetterKind.__members__ else DeadLetterKind.worker_error
        self.dead_letters.labels(self.service, label).inc()

    def model_in_use(self, *, use_case: str, version: str) -> None:
        """The model version now predicting (replaces the one before)."""
        self.model.labels(self.service).info({"use_case": use_case, "version": version})

    def timing(
        self, histogram: Histogram, call: Callable[..., Awaitable[T]]
    ) -> Callable[..., Awaitable[T]]:
        """`call`, each of its calls' seconds observed in `histogram` (failed ones too).
        It keeps `call`'s name, which the retry warnings show."""

        @functools.wraps(call)
        async def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                histogram.labels(self.service).observe(time.perf_counter() - started)

        return timed
