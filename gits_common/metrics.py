"""Prometheus metrics every GITS process shares: the request counts and latencies of an
API, served with the rest of its metrics at its own GET /metrics, and the small HTTP
server a process without an API (a worker replica, data_source, the ground-truth
collector) serves its metrics on.

Names start with `gits_` and end with their unit (`_seconds`, `_total`); labels take few
values (service, route template, method, status, outcome, use case), never an id.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from fastapi import FastAPI
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    make_wsgi_app,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
UNKNOWN = "none"  # the handler label of a path no route has (the instrumentator's own)
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
    """The instrumentation the middleware calls once a request is answered. A redirect's
    handler label is "none": the instrumentator names a path by itself when only its
    trailing slash differs from a route's (the 307 to it), so each `/use_cases/<x>/`
    would otherwise be a series of its own, for ever."""
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
        redirected = info.response is not None and 300 <= info.response.status_code < 400
        handler = UNKNOWN if redirected else info.modified_handler
        values = (service, handler, info.method, info.modified_status)
        requests.labels(*values).inc()
        durations.labels(*values).observe(info.modified_duration)

    return observe


def serve_metrics(port: int, *, host: str, registry: CollectorRegistry) -> bool:
    """Serve `registry` in the Prometheus text format at http://host:port/metrics, from
    a daemon thread (prometheus_client's WSGI app and server, whose failed requests, such
    as a scraper resetting its connection, are logged rather than printed), for a
    process without an API. Port 0 serves nothing. A port already taken is logged and
    skipped: metrics are not worth stopping a worker for. Returns whether it serves."""
    if port == 0:
        log.info("metrics server off (port 0)")
        return False
    server_class = _LoggingServer6 if ":" in host else _LoggingServer
    try:
        server = make_server(
            host, port, make_wsgi_app(registry), server_class, handler_class=_QuietHandler
        )
    except OSError as exc:
        log.warning("metrics not served on %s:%d: %s", host, port, exc)
        return False
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics at http://%s:%d%s", host, port, METRICS_PATH)
    return True


def served_registry(port: int, *, host: str) -> CollectorRegistry:
    """A new `process_registry`, served at http://host:port/metrics (`serve_metrics`;
    port 0: not served), for a process without an API to register its series in."""
    registry = process_registry()
    serve_metrics(port, host=host, registry=registry)
    return registry


class _LoggingServer(ThreadingWSGIServer):
    """prometheus_client's server, with a failed request logged (one record) instead of
    socketserver's traceback printed to stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log why a request failed; the server goes on."""
        log.debug("metrics request from %s failed", client_address, exc_info=True)


class _LoggingServer6(_LoggingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No access line a scrape (every 15 s of every Prometheus)."""

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing."""
