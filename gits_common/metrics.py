"""Prometheus metrics every GITS process shares: the request counts and latencies of an
API, served with the rest of its metrics at its own GET /metrics, and the small HTTP
server a process without an API (a worker replica, data_source, the ground-truth
collector) serves its metrics on.

Names start with `gits_` and end with their unit (`_seconds`, `_total`); labels take few
values (service, route template, method, status, outcome, use case), never an id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# Seconds, from a health check (milliseconds) to a report or a model upload (a minute).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def process_registry() -> CollectorRegistry:
    """A registry of its own holding the process's CPU, memory, open files, Python and
    garbage-collector metrics (prometheus_client's standard `process_*`, `python_*`).
    One per exposed app rather than the global REGISTRY, so that two apps in one process
    (as in the tests) each show only their own requests."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def instrument_api(
    app: FastAPI, *, service: str, registry: CollectorRegistry | None = None
) -> CollectorRegistry:
    """Count and time every request of `app` (prometheus-fastapi-instrumentator's
    middleware, outermost: 401s and 413s are counted too) and serve `registry` (a new
    `process_registry` when None) at GET /metrics, open like /health and left out of
    the OpenAPI document. Series:

    - `gits_http_requests_total{service, handler, method, status}`: requests answered;
    - `gits_http_request_duration_seconds{service, handler, method, status}`: a histogram
      of the time to the end of the answer.

    `handler` is the route's template (`/ml_data_api/use_cases/{name}`), or "none" for a
    path no route has, so a scan of random paths cannot add series. /metrics itself is
    not counted. Returns the registry, for a caller to add collectors to. Call before
    the app starts (it adds a middleware)."""
    registry = registry or process_registry()
    instrumentator = Instrumentator(
        should_group_status_codes=False,  # a 404 and a 503 mean different things
        should_group_untemplated=True,
        excluded_handlers=[f"^{METRICS_PATH}$"],
        registry=registry,
    )
    instrumentator.add(_request_metrics(service, registry))
    instrumentator.instrument(app).expose(app, endpoint=METRICS_PATH, include_in_schema=False)
    return registry


def _request_metrics(service: str, registry: CollectorRegistry) -> Callable[[Info], None]:
    """The instrumentation the middleware calls once a request is answered."""
    labels = ("service", "handler", "method", "status")
    requests = Counter(
        "gits_http_requests_total",
        "HTTP requests answered, by route template, method and status code",
        labels,
        registry=registry,
    )
    durations = Histogram(
        "gits_http_request_duration_seconds",
        "Seconds from a request's arrival to the end of its answer",
        labels,
        buckets=REQUEST_BUCKETS,
        registry=registry,
    )

    def observe(info: Info) -> None:
        values = (service, info.modified_handler, info.method, info.modified_status)
        requests.labels(*values).inc()
        durations.labels(*values).observe(info.modified_duration)

    return observe


def serve_metrics(port: int, *, host: str, registry: CollectorRegistry) -> bool:
    """Serve `registry` in the Prometheus text format at http://host:port/metrics, from
    a daemon thread (prometheus_client's own server), for a process without an API.
    Port 0 serves nothing. A port already taken is logged and skipped: metrics are not
    worth stopping a worker for. Returns whether the server runs."""
    if port == 0:
        log.info("metrics server off (port 0)")
        return False
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning("metrics not served on %s:%d: %s", host, port, exc)
        return False
    log.info("metrics at http://%s:%d%s", host, port, METRICS_PATH)
    return True
