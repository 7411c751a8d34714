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
from gits_common.demo import TARGET
from retraining_api.app import create_app
from retraining_api.settings import load_settings
from tests.conftest import LiveServer
from tests.workers.conftest import (  # noqa: F401 (fixtures shared with the worker tests)
    DEMO,
    Platform,
    apis,
    model_files,
    platform,
    queue_manager_app,
)

FAST_MODELS = ("lr", "ridge")


@pytest.fixture(scope="module")
def retraining_url(apis, tmp_path_factory) -> Iterator[str]:  # noqa: F811
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
