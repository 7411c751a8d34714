"""Reading Prometheus text, for tests that scrape /metrics before and after something
happens and check how far the counters moved."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

# (sample name, its labels) -> value
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, held), v in samples.items() if n == name and wanted <= held)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How far `name` (summed over the samples with `labels`) moved between scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


def labels_of(samples: Samples, name: str) -> list[dict[str, str]]:
    """The label sets of every sample named `name`."""
    return [dict(held) for n, held in samples if n == name]


def scrape(url: str, *, timeout: float = 30.0) -> Samples:
    """The samples a metrics server answers at `url`, waiting for it to be up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=5)
            response.raise_for_status()
            return parse(response.text)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
