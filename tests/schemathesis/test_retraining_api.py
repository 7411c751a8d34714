"""Schemathesis against retraining_api: every operation, authenticated, beside an
ml_data_api and a queue_manager of its own (whose use cases and models schemathesis
cannot guess: no job it asks for gets as far as training)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from retraining_api.app import create_app
from retraining_api.settings import load_settings
from tests.conftest import LiveServer, free_port
from tests.schemathesis.conftest import openapi_schema, queue_manager

RULES = {
    "POST /retraining_api/jobs": "the use case needs enough rows of each class, the "
    "models and metric must be PyCaret's for its task",
    "POST /retraining_api/explainers": "either model_name or job_id; the model's table "
    "must have rows",
    "GET /retraining_api/get_explainer_dashboard": "config_name must be the model's use case",
}
PENDING: dict[str, str] = {}

schema = openapi_schema(create_app(load_settings()), max_examples=40, rules=RULES)


@pytest.fixture(scope="module")
def url(own_postgres, ml_data_api_url, tmp_path_factory) -> Iterator[str]:
    with queue_manager(ml_data_api_url) as qm, LiveServer(qm) as queue_manager_server:
        settings = dataclasses.replace(
            load_settings(),
            postgres=own_postgres,
            ml_data_api_url=ml_data_api_url,
            queue_manager_url=queue_manager_server.url,
            monitoring_api_url=f"http://127.0.0.1:{free_port()}",
            artifacts_dir=tmp_path_factory.mktemp("artifacts"),
            default_models=("lr",),
            on_drift=False,
        )
        with LiveServer(create_app(settings)) as server:
            yield server.url


@schema.parametrize()
def test_operation(case, url):
    case.call_and_validate(base_url=url)
