"""retraining_api against a running slice of the platform: ml_data_api and queue_manager
on real ports, a demo use case with training, testing and labelled production rows, a
service bound to a trained model, and worker processes on the real broker when a test
asks for them. Jobs run in retraining_api's own job processes, as in production."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gits_common.clients import rows_from_frame
from gits_ml.demo import TARGET
from ml_data_api.app import create_app as create_ml_data_api
from ml_data_api.settings import load_settings as ml_data_api_settings
from queue_manager.app import create_app as create_queue_manager
from queue_manager.sandbox import Sandbox
from queue_manager.settings import load_settings as queue_manager_settings
from retraining_api.app import create_app
from retraining_api.settings import load_settings
from tests.conftest import LiveServer, private_store
from tests.workers.conftest import (  # noqa: F401 (fixtures shared with the worker tests)
    DEMO,
    Platform,
    model_files,
    platform,
)

FAST_MODELS = ("lr", "ridge")


@pytest.fixture(scope="module")
def apis(postgres_dsn, rabbitmq_url) -> Iterator[dict[str, str]]:
    """ml_data_api and queue_manager served on free ports, queue_manager checking model
    uploads against this ml_data_api (where the tests register their use cases)."""
    settings = private_store(queue_manager_settings())
    sandbox = Sandbox(
        time_limit=settings.validation_seconds,
        memory_bytes=settings.validation_memory_bytes,
        preload=settings.sandbox_preload,
    )
    # Started before the first upload, which would otherwise wait for PyCaret's import in
    # the sandbox longer than a test client's timeout on a busy machine.
    sandbox.start()
    try:
        with LiveServer(create_ml_data_api(ml_data_api_settings())) as ml_data:
            settings = dataclasses.replace(settings, ml_data_api_url=ml_data.url)
            app = create_queue_manager(settings, sandbox=sandbox)
            with LiveServer(app) as queue_manager:
                yield {"ml_data_api": ml_data.url, "queue_manager": queue_manager.url}
    finally:
        sandbox.close()


@pytest.fixture(scope="module")
def retraining_url(apis, tmp_path_factory) -> Iterator[str]:
    """retraining_api served on a free port; it compares two quick models by default."""
    settings = dataclasses.replace(
        load_settings(),
        ml_data_api_url=apis["ml_data_api"],
        queue_manager_url=apis["queue_manager"],
        artifacts_dir=Path(tmp_path_factory.mktemp("artifacts")),
        default_models=FAST_MODELS,
    )
    with LiveServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture
def retraining(retraining_url, api_token) -> Iterator[httpx.Client]:
    """A client of retraining_api that sends the bearer token."""
    headers = {"Authorization": f"Bearer {api_token}"}
    with httpx.Client(base_url=retraining_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def loaded(platform) -> Platform:  # noqa: F811
    """The platform's use case with the demo's training and testing rows, and the demo's
    labelled production readings with their ground truth attached."""
    name = platform.use_case.name
    truth = DEMO.ground_truth
    production = truth.drop(columns=[TARGET, "available_at"]).assign(prediction=0.0)
    labels = [
        {"message_id": m, "value": v} for m, v in zip(truth.message_id, truth[TARGET], strict=True)
    ]
    with platform.http("ml_data_api") as ml:
        for table, frame in (
            ("training", DEMO.training),
            ("testing", DEMO.testing),
            ("production", production),
        ):
            path = f"/ml_data_api/use_cases/{name}/{table}/rows"
            ml.post(path, json={"rows": rows_from_frame(frame)}).raise_for_status()
        ml.post(f"/ml_data_api/use_cases/{name}/labels", json={"labels": labels}).raise_for_status()
    return platform


def wait_for_job(
    client: httpx.Client, path: str, *, timeout: float = 180, seen: Callable[[dict], Any] = print
) -> dict[str, Any]:
    """Poll a job until it is finished or failed; every state seen goes to `seen`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(path).raise_for_status().json()
        seen(job)
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {path} not done after {timeout} s: {job}")
