"""What the ground-truth collector counts, for Prometheus (served on
GROUND_TRUTH_METRICS_PORT by `python -m ground_truth_collector`)."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter


class Run(StrEnum):
    """The `outcome` label of gits_ground_truth_runs_total."""

    ok = "ok"
    failed = "failed"  # ml_data_api out of reach, or the use case gone: tried next time


class LabelMetrics:
    """The collector's series, labelled with its use case, in `registry` (a private one
    by default: a collector built in a test counts without serving anything)."""

    def __init__(self, use_case: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.labels_sent = Counter(
            "gits_ground_truth_labels_sent_total",
            "Labels ml_data_api attached to a prediction (and added to the training table)",
            ["use_case"],
            registry=self.registry,
        ).labels(use_case)
        runs = Counter(
            "gits_ground_truth_runs_total",
            "Collection runs (one every GROUND_TRUTH_INTERVAL_SECONDS), by outcome",
            ["use_case", "outcome"],
            registry=self.registry,
        )
        self.runs = {outcome: runs.labels(use_case, outcome) for outcome in Run}
