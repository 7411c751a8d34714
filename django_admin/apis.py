"""Clients of the GITS APIs that own what the admin shows: queue_manager holds algorithms
and services, ml_data_api the data, monitoring_api reports and history, retraining_api
retraining and explainer jobs. The admin keeps no copy of any of it."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
from django.conf import settings

from gits_common import errors
from gits_common.clients import SyncApiClient

API_NAMES = ("queue_manager", "ml_data_api", "monitoring_api", "retraining_api")

# Failures after which the API certainly did not act: the request never left.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiUnavailable(errors.Unavailable):
    """An API could not serve a request: unreachable, too slow, or answering 5xx. Knows
    which API and where, so a page can say so."""

    def __init__(self, api: str, url: str, method: str, cause: errors.Unavailable) -> None:
        super().__init__(cause.detail, errors=cause.errors)
        self.api = api
        self.url = url
        transport = cause.__cause__
        self.reached = transport is None  # no transport error: it answered 5xx
        self.timed_out = isinstance(transport, httpx.TimeoutException)
        # A change sent that got no answer (a timeout, a dropped connection) may have
        # been made; a read changes nothing, and an unsent request cannot have acted.
        self.maybe_applied = (
            not self.reached and not isinstance(transport, NOT_SENT) and method.upper() not in READS
        )


class AdminApiClient(SyncApiClient):
    """A `SyncApiClient` whose unavailability errors name the API and its address."""

    def __init__(self, base_url: str, token: str, *, timeout: float, name: str) -> None:
        super().__init__(base_url, token, timeout=timeout, name=name)
        self.base_url = base_url.rstrip("/")

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw successful response, or the domain error the API reported."""
        try:
            return super().send(method, path, **kwargs)
        except errors.Unavailable as exc:
            raise ApiUnavailable(self.name, self.base_url, method, exc) from exc


@cache
def client(api: str) -> AdminApiClient:
    """The shared client of one API (`API_NAMES`), from settings.GITS_API_URLS."""
    if api not in API_NAMES:
        raise ValueError(f"unknown GITS API {api!r}; one of {API_NAMES}")
    url: str = settings.GITS_API_URLS[api]
    return AdminApiClient(url, settings.GITS_API_TOKEN, timeout=settings.GITS_API_TIMEOUT, name=api)


def reset_clients() -> None:
    """Forget the shared clients, so changed settings (tests) take effect."""
    client.cache_clear()
