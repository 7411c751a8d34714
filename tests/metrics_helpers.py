"""Reading Prometheus text, for tests that scrape /metrics before and after something
happens and check how far the counters moved."""

from __future__ import annotations

import time
from typing import Any

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


def check_requests_are_counted(
    client: Any, service: str, *, listed: str, one: tuple[str, str]
) -> None:
    """An API's /metrics (open, like /health) counts and times each request by route
    template and status: the route `listed` answered once (200) and once refused for a
    wrong token (401), and `one`'s template (a route of one record) asked twice for a
    path naming none (404)."""
    open_ = {"Authorization": ""}
    before = parse(client.get("/metrics", headers=open_).text)
    template, missing = one

    client.get(listed)
    client.get(listed, headers={"Authorization": "Bearer wrong"})
    client.get(missing)
    client.get(missing)

    after = parse(client.get("/metrics", headers=open_).text)
    requests, durations = "gits_http_requests_total", "gits_http_request_duration_seconds_count"
    route = {"service": service, "method": "GET", "handler": listed}
    assert moved(before, after, requests, **route, status="200") == 1
    assert moved(before, after, requests, **route, status="401") == 1
    assert moved(before, after, durations, **route) == 2
    assert moved(before, after, requests, service=service, handler=template, status="404") == 2
