"""Schemathesis against queue_manager: every operation, authenticated. Its store is
in memory; uploads are checked against an ml_data_api of the schemathesis schema, where
one use case and one model file (named as the document's examples name it) are in
place, so that the examples' bindings succeed. Every queue a binding declared is
deleted afterwards."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from gits_common.amqp import service_queues
from gits_common.schemas import Column, Task, UseCase
from queue_manager.app import create_app
from queue_manager.sandbox import Sandbox
from queue_manager.settings import load_settings
from tests.conftest import LiveServer
from tests.model_files import model_bytes
from tests.queue_manager.conftest import FEATURES, TEST_PRELOAD
from tests.schemathesis.conftest import openapi_schema, queue_manager

TIMES = "times must lie in 1678-2262 (pandas)"
RULES = {
    "POST /queue_manager/algorithms": "the file must be a model that loads and predicts "
    "the use case's rows; the use case must exist with the form's task",
    "POST /queue_manager/services": "the use case, when given, must be the algorithm's",
    "PUT /queue_manager/services/{name}": "the use case, when given, must be the algorithm's",
    "GET /queue_manager/jobs": TIMES,
    "GET /queue_manager/jobs/counts": TIMES,
    "POST /queue_manager/jobs": f"{TIMES}; the payload at most 64 KiB of JSON",
    "POST /queue_manager/jobs/batch": f"{TIMES}; the payloads at most 64 KiB of JSON",
    "PUT /queue_manager/jobs/batch": f"{TIMES}; the payloads at most 64 KiB of JSON; "
    "a recorded job is finished or failed",
    "PATCH /queue_manager/jobs/batch": TIMES,
    "PATCH /queue_manager/jobs/{service}/{message_id}": TIMES,
}
PENDING: dict[str, str] = {}
# The algorithm name the document's binding example names.
EXAMPLE_ALGORITHM = "product_quality"
USE_CASE = UseCase(
    name="st_sensors",
    task=Task.regression,
    features=[Column(name=f) for f in FEATURES],
    target=Column(name="quality"),
)


def documented() -> FastAPI:
    """An app to read the OpenAPI document of; its sandbox never starts."""
    sandbox = Sandbox(time_limit=1, memory_bytes=1, preload=())
    try:
        return create_app(load_settings(), sandbox=sandbox)
    finally:
        sandbox.close()


schema = openapi_schema(documented(), max_examples=40, rules=RULES)


@pytest.fixture(scope="module")
def url(ml_data_api_url, rabbitmq_url) -> Iterator[str]:
    with queue_manager(ml_data_api_url, preload=TEST_PRELOAD) as app, LiveServer(app) as server:
        try:
            seed(ml_data_api_url, server.url)
            yield server.url
        finally:
            bound = [s.name for s in app.state.queue_manager.services()]
            delete_queues(rabbitmq_url, bound)


def seed(ml_data_api_url: str, queue_manager_url: str) -> None:
    """The use case in ml_data_api, and a model file for it uploaded to queue_manager."""
    auth = {"Authorization": f"Bearer {os.environ['GITS_ADMIN_TOKEN']}"}
    with httpx.Client(base_url=ml_data_api_url, headers=auth) as ml:
        ml.post("/ml_data_api/use_cases", json=USE_CASE.model_dump(mode="json")).raise_for_status()
    with httpx.Client(base_url=queue_manager_url, headers=auth, timeout=60) as client:
        form = {
            "name": EXAMPLE_ALGORITHM,
            "use_case": USE_CASE.name,
            "task": "regression",
            "features": json.dumps(FEATURES),
        }
        files = {"file": ("model.pkl", model_bytes(FEATURES))}
        uploaded = client.post("/queue_manager/algorithms", data=form, files=files)
        assert uploaded.status_code == 201, uploaded.text


def delete_queues(url: str, services: list[str]) -> None:
    """Delete the queues of these services."""

    async def delete() -> None:
        connection = await aio_pika.connect(url, timeout=5)
        async with connection:
            channel = await connection.channel()
            for service in services:
                for name in service_queues(service):
                    await channel.queue_delete(name)

    asyncio.run(delete())


@schema.parametrize()
def test_operation(case, url):
    case.call_and_validate(base_url=url)
