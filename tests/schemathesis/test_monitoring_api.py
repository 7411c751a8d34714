"""Schemathesis against monitoring_api: every operation, authenticated, beside an
ml_data_api and a queue_manager of its own. No webhook name resolves: the test asks no
DNS server."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest

from monitoring_api.app import create_app
from monitoring_api.settings import load_settings
from monitoring_api.webhooks import IPAddress
from tests.conftest import LiveServer
from tests.schemathesis.conftest import openapi_schema, queue_manager

TIMES = "times must lie in 1678-2262 (pandas) and start before end"
RULES = {
    "GET /monitoring_api/use_cases/{name}/reports/{kind}": f"{TIMES}; last=N or a time "
    "window, not both",
    "GET /monitoring_api/use_cases/{name}/history": TIMES,
    "POST /monitoring_api/use_cases/{name}/history/run": "a history point needs enough "
    "production rows in its window (MONITORING_MIN_WINDOW_ROWS)",
    "GET /monitoring_api/use_cases/{name}/alerts": TIMES,
    "PUT /monitoring_api/use_cases/{name}/thresholds": "a webhook must not point at this "
    "machine or a private network",
    "GET /monitoring_api/use_cases/{name}/classification": f"{TIMES}; last=N or a time "
    "window, not both; a classification use case",
    "GET /monitoring_api/use_cases/{name}/anomalies": f"{TIMES}; last=N or a time window, "
    "not both; an anomaly use case",
    "GET /monitoring_api/use_cases/{name}/performance/estimated": f"{TIMES}; last=N or a "
    "time window, not both",
}
PENDING: dict[str, str] = {}

schema = openapi_schema(create_app(load_settings()), max_examples=40, rules=RULES)


async def nowhere(name: str, port: int) -> list[IPAddress]:
    """A resolver for which no name exists."""
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture(scope="module")
def url(own_postgres, ml_data_api_url) -> Iterator[str]:
    with queue_manager(ml_data_api_url) as qm, LiveServer(qm) as queue_manager_server:
        settings = dataclasses.replace(
            load_settings(),
            postgres=own_postgres,
            ml_data_api_url=ml_data_api_url,
            queue_manager_url=queue_manager_server.url,
            interval_seconds=0,
        )
        app = create_app(settings)
        app.state.watch.webhooks.resolve = nowhere
        with LiveServer(app) as server:
            yield server.url


@schema.parametrize()
def test_operation(case, url):
    case.call_and_validate(base_url=url)
