"""Seconds for demo retraining jobs through retraining_api (six models compared on the
demo's training table, both models scored, challenger saved), from the POST to the
finished job, against PyCaret alone training the same six models in-process (the
baseline), on the real PostgreSQL."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
import warnings
from contextlib import ExitStack
from typing import Any
from unittest import mock

import httpx

from benchmarks.support import bearer, running_service
from gits_common.clients import rows_from_frame
from gits_ml import modeling
from gits_ml.demo import PRODUCT_QUALITY, DemoConfig, generate

DEMO = generate(DemoConfig(production_minutes=10))
MODELS = ["lr", "ridge", "lightgbm", "rf", "et", "catboost"]
GOAL_SECONDS = 60.0


def pycaret_alone() -> float:
    """Seconds for setup, compare and finalize of the six models in this process."""
    started = time.perf_counter()
    setup = modeling.experiment(PRODUCT_QUALITY, DEMO.training)
    modeling.best_model(setup, PRODUCT_QUALITY.task, include=MODELS)
    return time.perf_counter() - started


def load(client: httpx.Client, ml: str, qm: str, name: str) -> None:
    """The demo's tables under a fresh use case, and a service bound to a first model."""
    use_case = PRODUCT_QUALITY.model_copy(update={"name": name})
    client.post(f"{ml}/ml_data_api/use_cases", json=use_case.model_dump(mode="json"))
    for table, frame in (("training", DEMO.training), ("testing", DEMO.testing)):
        url = f"{ml}/ml_data_api/use_cases/{name}/{table}/rows"
        client.post(url, json={"rows": rows_from_frame(frame)}).raise_for_status()
    pipeline, _ = modeling.train(use_case, DEMO.training, include=["lr"])
    form = {
        "name": name,
        "use_case": name,
        "task": "regression",
        "features": json.dumps(PRODUCT_QUALITY.feature_names),
    }
    files = {"file": ("m.pkl", modeling.to_bytes(pipeline))}
    client.post(f"{qm}/queue_manager/algorithms", data=form, files=files).raise_for_status()
    binding = {"routing_key": f"bench.{name}", "algorithm_name": name}
    client.put(f"{qm}/queue_manager/services/{name}", json=binding).raise_for_status()


def job_seconds(client: httpx.Client, url: str, name: str) -> tuple[float, dict[str, Any]]:
    """Seconds from the POST to the finished job, and the job."""
    started = time.perf_counter()
    job = client.post(f"{url}/retraining_api/jobs", json={"use_case": name, "models": MODELS})
    job.raise_for_status()
    while True:
        state = client.get(f"{url}/retraining_api/jobs/{job.json()['id']}").json()
        if state["status"] in ("finished", "failed"):
            break
        time.sleep(0.2)
    if state["status"] == "failed":
        raise RuntimeError(f"the retraining job failed: {state['error']}")
    return time.perf_counter() - started, state


def run() -> dict[str, Any]:
    """Seconds of the job and of PyCaret alone, and their ratio."""
    warnings.simplefilter("ignore")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        artifacts = stack.enter_context(tempfile.TemporaryDirectory())
        ml = stack.enter_context(running_service("ml_data_api", "ML_DATA_API_PORT"))
        # queue_manager checks uploads against this run's ml_data_api.
        with mock.patch.dict(os.environ, {"ML_DATA_API_URL": ml}):
            qm = stack.enter_context(running_service("queue_manager", "QUEUE_MANAGER_PORT"))
        client = stack.enter_context(httpx.Client(headers=bearer(), timeout=120))
        load(client, ml, qm, name)
        env = {
            "ML_DATA_API_URL": ml,
            "QUEUE_MANAGER_URL": qm,
            "RETRAINING_ARTIFACTS_DIR": artifacts,
        }
        with (
            mock.patch.dict(os.environ, env),
            running_service("retraining_api", "RETRAINING_API_PORT") as retraining,
        ):
            # The first job also waits for its process to start and import PyCaret.
            first, _ = job_seconds(client, retraining, name)
            seconds, job = job_seconds(client, retraining, name)
    alone = pycaret_alone()
    return {
        "first_job_s": first,
        "job_s": seconds,
        "pycaret_alone_s": alone,
        "job_vs_pycaret": seconds / alone,
        "training_rows": job["result"]["training_rows"],
        "winner": job["result"]["retrained_model_results"]["Model"],
    }


def report(result: dict[str, Any]) -> str:
    """A short table for the terminal."""
    verdict = "met" if result["job_s"] < GOAL_SECONDS else "MISSED"
    return (
        f"retraining_api demo job, {len(MODELS)} models on {result['training_rows']:,} rows "
        f"(winner: {result['winner']})\n"
        f"  PyCaret alone (baseline):  {result['pycaret_alone_s']:6.1f} s\n"
        f"  first job after start:     {result['first_job_s']:6.1f} s\n"
        f"  next job, POST to finished:{result['job_s']:6.1f} s"
        f"  ({result['job_vs_pycaret']:.2f}x the baseline; goal < {GOAL_SECONDS:.0f} s: {verdict})"
    )


if __name__ == "__main__":
    print(report(run()))
