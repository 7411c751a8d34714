"""Clients of the GITS APIs that own what the admin shows: queue_manager holds algorithms
and services, ml_data_api the data, monitoring_api reports and history, retraining_api
retraining and explainer jobs. The admin keeps no copy of any of it.

Two tokens: `client` reads with GITS_READ_TOKEN (which the APIs let GET only), for every
page and dashboard; `acting_client` carries GITS_ADMIN_TOKEN, and only for a user who may
manage models (`django_admin.roles`)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import httpx
from django.conf import settings

from django_admin.roles import check_may_manage
from gits_common import errors
from gits_common.clients import SyncApiClient

API_NAMES = ("queue_manager", "ml_data_api", "monitoring_api", "retraining_api")

# Failures after which the API certainly did not act: the request never left.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
READS = frozenset({"GET", "HEAD", "OPTIONS"})
# The clients word a refusal as "<api> answered <status>: <reason>".
_ANSWERED = re.compile(r"^\w+ answered (?P<status>\d{3}):")
# What an API answers when it does not take a token: 401 unknown, 403 too low a role.
TOKEN_REFUSALS = frozenset({401, 403})


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


class BadAnswer(errors.GitsError):
    """An API answered with success but not in the shape its contract gives (an object
    where a list of records was expected): a fault of the API, not of the request."""


class TokenRefused(errors.GitsError):
    """An API did not take the admin's token (401) or found its role too low (403): the
    admin's settings do not match the API's, which no user can fix by trying again."""

    def __init__(self, api: str, setting: str, cause: errors.GitsError) -> None:
        super().__init__(
            f"{api} does not accept the admin's {setting} ({cause.detail}); the admin's "
            f"{setting} must be the API's {setting} (see .env)"
        )
        self.api = api
        self.setting = setting


class AdminApiClient(SyncApiClient):
    """A `SyncApiClient` whose unavailability errors name the API and its address, and
    whose token refusals name the setting the token comes from."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float, name: str, setting: str
    ) -> None:
        super().__init__(base_url, token, timeout=timeout, name=name)
        self.base_url = base_url.rstrip("/")
        self.setting = setting

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw successful response, or the domain error the API reported. A read
        waits settings.GITS_API_TIMEOUT seconds, a change GITS_API_SLOW_TIMEOUT (a
        caller may pass its own `timeout`)."""
        if method.upper() not in READS:
            kwargs.setdefault("timeout", settings.GITS_API_SLOW_TIMEOUT)
        try:
            return super().send(method, path, **kwargs)
        except errors.Unavailable as exc:
            raise ApiUnavailable(self.name, self.base_url, method, exc) from exc
        except errors.GitsError as exc:
            answered = _ANSWERED.match(exc.detail)
            if answered and int(answered["status"]) in TOKEN_REFUSALS:
                raise TokenRefused(self.name, self.setting, exc) from exc
            raise


def _new_client(api: str, *, setting: str, token: str) -> AdminApiClient:
    if api not in API_NAMES:
        raise ValueError(f"unknown GITS API {api!r}; one of {API_NAMES}")
    url: str = settings.GITS_API_URLS[api]
    return AdminApiClient(url, token, timeout=settings.GITS_API_TIMEOUT, name=api, setting=setting)


@cache
def client(api: str) -> AdminApiClient:
    """The shared reading client of one API (`API_NAMES`, at settings.GITS_API_URLS),
    with the read token: every page and dashboard reads through it."""
    return _new_client(api, setting="GITS_READ_TOKEN", token=settings.GITS_READ_TOKEN)


@cache
def _admin_client(api: str) -> AdminApiClient:
    return _new_client(api, setting="GITS_ADMIN_TOKEN", token=settings.GITS_ADMIN_TOKEN)


def acting_client(api: str, user: Any) -> AdminApiClient:
    """The client of one API with the admin token, for a change `user` asked for;
    `PermissionDenied` (nothing is sent) unless the user may manage models."""
    check_may_manage(user)
    return _admin_client(api)


def reset_clients() -> None:
    """Forget the shared clients, so changed settings (tests) take effect."""
    client.cache_clear()
    _admin_client.cache_clear()
