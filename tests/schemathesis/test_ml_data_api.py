"""Schemathesis against ml_data_api: every operation, authenticated."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from ml_data_api.app import create_app
from ml_data_api.settings import load_settings
from tests.conftest import LiveServer
from tests.schemathesis.conftest import openapi_schema, queue_manager

ROWS = "rows must fit the use case's columns, which the use case defines"
TIMES = "times must lie in 1678-2262 (pandas) and start before end"
RULES = {
    "POST /ml_data_api/use_cases": "column names distinct and not reserved; a target "
    "unless the task is anomaly",
    "POST /ml_data_api/use_cases/{name}/{table}/rows": ROWS,
    "POST /ml_data_api/use_cases/{name}/labels": ROWS,
    "POST /ml_data_api/insert_data/": ROWS,
    "GET /ml_data_api/use_cases/{name}/{table}/rows": TIMES,
    "DELETE /ml_data_api/use_cases/{name}/{table}/rows": TIMES,
}
PENDING: dict[str, str] = {}

schema = openapi_schema(create_app(load_settings()), max_examples=40, rules=RULES)


@pytest.fixture(scope="module")
def url(own_postgres) -> Iterator[str]:
    """ml_data_api, with a queue_manager to ask before it deletes a use case (one that
    checks no upload here: nothing is uploaded)."""
    with queue_manager("http://127.0.0.1:9") as qm_app, LiveServer(qm_app) as qm:
        settings = dataclasses.replace(
            load_settings(), postgres=own_postgres, max_batch_rows=1000, queue_manager_url=qm.url
        )
        with LiveServer(create_app(settings)) as server:
            yield server.url


@schema.parametrize()
def test_operation(case, url):
    case.call_and_validate(base_url=url)
