"""What data_source counts, for Prometheus (served on DATA_SOURCE_METRICS_PORT by
`python -m data_source`): messages sent, confirmed by the broker, and those still
waiting for a confirm or for a queue that takes their routing key."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class PublisherMetrics:
    """One publisher's series, labelled with its use case and routing key, in `registry`
    (a private one by default: a publish in a test or in `gits publish` counts without
    serving anything)."""

    def __init__(
        self, *, use_case: str, routing_key: str, registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["use_case", "routing_key"]
        values = (use_case, routing_key)
        self.published = Counter(
            "gits_data_source_published_total",
            "Messages sent to the broker (again after a broken connection)",
            labels,
            registry=self.registry,
        ).labels(*values)
        self.confirmed = Counter(
            "gits_data_source_confirmed_total",
            "Messages the broker confirmed (stored in a queue)",
            labels,
            registry=self.registry,
        ).labels(*values)
        self.unconfirmed = Gauge(
            "gits_data_source_unconfirmed_messages",
            "Messages sent and not yet confirmed (those waiting for a queue included)",
            labels,
            registry=self.registry,
        ).labels(*values)
        self.waiting = Gauge(
            "gits_data_source_waiting_messages",
            "Messages no queue takes yet (their service is not bound), tried every second",
            labels,
            registry=self.registry,
        ).labels(*values)
