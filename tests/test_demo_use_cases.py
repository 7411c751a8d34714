"""The three demo use cases stream end to end as `make run` streams them: the loader seeds
the tables, a first model is trained as the bootstrap trains it (a classifier with
SMOTE, an anomaly model with its threshold chosen on the testing rows), a worker predicts
every message data_source publishes through the real broker, the collector labels them,
and the task's outputs are what the contract says: a label with its probability for
classification, a flag with its score for anomaly detection (with most injected
anomalies flagged), a number for regression."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.schemas import Table, Task
from gits_common.settings import Role, token
from gits_ml.demo import demo_config
from gits_ml.demos import DEMOS, IN_SPEC, OFF_SPEC, AnomalyDemoData
from ml_data_loader.bootstrap import bootstrap_model
from tests.amqp_helpers import delete_service_queues
from tests.live_platform import ROOT, Platform, running_apis

MESSAGES = 2000  # production minutes streamed: about eight injected anomalies


def run(platform: Platform, *args: str, **env: str) -> str:
    """Run `python -m <args>` with the platform's environment to its end; its output."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**platform.env, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def production(platform: Platform, name: str, **params: Any) -> pd.DataFrame:
    """The use case's production rows."""

    async def read() -> list[dict[str, Any]]:
        client = MlDataClient(platform.urls["ml_data_api"], token(Role.admin))
        try:
            return await client.read_rows(name, Table.production, limit=10_000, **params)
        finally:
            await client.close()

    return pd.DataFrame(asyncio.run(read()))


def wait_for_rows(
    platform: Platform, name: str, rows: int, *, labelled: bool = False
) -> pd.DataFrame:
    """The production rows once there are `rows` of them (labelled ones, if asked)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        frame = production(
            platform, name, last=MESSAGES, **({"labelled": "true"} if labelled else {})
        )
        if len(frame) >= rows:
            return frame
        time.sleep(1)
    pytest.fail(f"{len(frame)} of {rows} rows of {name} after 240 s")


def bootstrap(platform: Platform, name: str, service: str, routing_key: str) -> None:
    """The service's first model, as `ml_data_loader --bootstrap-model` trains it."""
    demo = DEMOS[name]
    data = demo.generate(demo_config())

    async def go() -> None:
        client = QueueManagerClient(platform.urls["queue_manager"], token(Role.admin))
        try:
            await bootstrap_model(
                client,
                demo.use_case,
                data.training,
                service=service,
                routing_key=routing_key,
                evaluation=data.testing,
            )
        finally:
            await client.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str) -> Iterator[Platform]:
    """The four APIs, shared by the three demos (each streams under a service of its own)."""
    with running_apis(tmp_path_factory.mktemp("demos")) as apis:
        yield apis


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DEMOS))
def test_a_demo_use_case_streams_end_to_end_with_the_outputs_of_its_task(
    name, platform: Platform, tmp_path: Path, rabbitmq_url
):
    demo = DEMOS[name]
    tag = uuid.uuid4().hex[:8]
    # A service of the test's own: `make run` may be streaming the demo's on this broker.
    service, routing_key = f"test_{name}_{tag}", f"test.{name}.{tag}"
    try:
        loaded = run(platform, "ml_data_loader", "--demo", name, "--wait", "60")
        assert f"{name} training" in loaded
        bootstrap(platform, name, service, routing_key)
        platform.start(f"worker-{name}", "workers", SERVICE_NAME=service)
        sent = run(
            platform,
            "data_source",
            "--use-case",
            name,
            "--routing-key",
            routing_key,
            "--count",
            str(MESSAGES),
            "--rate",
            "2000",
            "--run",
            tag,
        )
        assert f"published {MESSAGES} messages" in sent
        platform.start(
            f"collector-{name}",
            "ground_truth_collector",
            GROUND_TRUTH_USE_CASE=name,
            GROUND_TRUTH_DELAY_SECONDS="0",
            GROUND_TRUTH_INTERVAL_SECONDS="1",
            GROUND_TRUTH_STATE_DIR=str(tmp_path / "collector"),
        )
        rows = wait_for_rows(platform, name, MESSAGES)
        rows = rows[rows["message_id"].str.endswith(f"~{tag}")]
        assert len(rows) == MESSAGES
        check_outputs(demo.use_case.task, rows)
        if demo.use_case.task is Task.anomaly:
            check_most_anomalies_are_flagged(name, rows)
        # The collector labels them: every minute of the anomaly demo, about one
        # reading an hour (DEMO_GROUND_TRUTH_EVERY) of the others.
        labelled = wait_for_rows(platform, name, 10, labelled=True)
        assert labelled[demo.target].notna().all()
        labels_expected = MESSAGES if demo.use_case.task is Task.anomaly else MESSAGES // 10
        wait_for_rows(platform, name, labels_expected, labelled=True)
        check_monitoring(platform, name)
        check_retraining(platform, name, service)
    finally:
        for process in (f"worker-{name}", f"collector-{name}"):
            if process in platform.processes:
                platform.stop(process)
        delete_service_queues(rabbitmq_url, service)


def api(platform: Platform, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request to one of the platform's APIs (the first part of `path`), as admin."""
    base = platform.urls[path.strip("/").split("/", 1)[0]]
    headers = {"Authorization": f"Bearer {token(Role.admin)}"}
    return httpx.request(method, base + path, headers=headers, timeout=120, **kwargs)


# How close the estimate (CBPE, DLE) of the whole streamed window is to the realised
# metric on its labelled rows: the demo's model is fitted on its training rows, and the
# estimators on the testing rows (monitoring_api/estimation.py).
ESTIMATE_TOLERANCE = {"accuracy": 0.05, "mae": 0.2}  # accuracy: absolute; MAE: relative


def check_monitoring(platform: Platform, name: str) -> None:
    """The task's monitoring answers on the streamed window."""
    task = DEMOS[name].use_case.task
    base = f"/monitoring_api/use_cases/{name}"
    window = {"last": MESSAGES}
    if task is Task.anomaly:
        found = api(platform, "GET", f"{base}/anomalies", params=window)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["threshold"] is not None and body["events"]
        assert body["realised"]["precision"] >= 0.8 and body["realised"]["recall"] >= 0.5
        shown = gits(platform, "anomalies", name, "--last", str(MESSAGES))
        assert shown.returncode == 0 and "precision" in shown.stdout, shown.stderr
        refused = api(platform, "GET", f"{base}/performance/estimated", params=window)
        assert refused.status_code == 200 and refused.json()["reason"]
        return
    if task is Task.classification:
        found = api(platform, "GET", f"{base}/classification", params=window)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["confusion_matrix"]["labels"] == [IN_SPEC, OFF_SPEC]
        assert body["positive_class"] == OFF_SPEC and body["roc_auc"] > 0.8
    shown = gits(platform, "performance", name, "--last", str(MESSAGES))
    assert shown.returncode == 0 and "realised" in shown.stdout, shown.stderr
    estimated = api(platform, "GET", f"{base}/performance/estimated", params=window)
    assert estimated.status_code == 200, estimated.text
    body = estimated.json()
    assert body["method"] == ("CBPE" if task is Task.classification else "DLE")
    metric = "accuracy" if task is Task.classification else "mae"
    guess, real = body["estimated"][metric], body["realised"][metric]
    print(f"{name}: estimated {metric} {guess:.4f}, realised {real:.4f}")
    gap = abs(guess - real) if metric == "accuracy" else abs(guess - real) / real
    assert gap <= ESTIMATE_TOLERANCE[metric], body


# What `gits train` asks of each task: an ensembled model where PyCaret has them
# (regression, classification; the classifier tuned first, as one tuning shows the flag
# works end to end: tests/retraining_api/test_tasks.py tunes every task that can be);
# PyCaret's anomaly experiment has neither, so the anomaly job compares models with the
# threshold chosen on the testing rows.
RETRAINING = {
    Task.regression: ["--models", "lr,ridge", "--ensemble", "blend"],
    Task.classification: [
        "--models", "lr,ridge", "--metric", "F1", "--tune", "--trials", "3",
        "--ensemble", "blend", "--fix-imbalance",
    ],
    Task.anomaly: ["--models", "mcd,iforest"],
}  # fmt: skip


def gits(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    """`gits ARGS` as a user runs it, against the platform."""
    return subprocess.run(
        [sys.executable, "-m", "gits_cli", *args],
        cwd=ROOT,
        env={**platform.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def check_retraining(platform: Platform, name: str, service: str) -> None:
    """`gits train --bind` of the task: the challenger against the champion on the same
    held-out rows, with the task's options, and the job's result says what was built."""
    task = DEMOS[name].use_case.task
    done = gits(platform, "train", name, "--bind", service, *RETRAINING[task])
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = re.search(r"retraining job (\d+) queued", done.stdout)
    assert job_id is not None, done.stdout
    result = api(platform, "GET", f"/retraining_api/jobs/{job_id[1]}").json()["result"]
    metric = result["metric"]
    assert result["retrained_model_results"][metric] is not None
    assert result["previous_model_results"][metric] is not None  # the champion, same rows
    if task is Task.anomaly:
        assert result["threshold"]["chosen"] is not None
        assert "anomaly threshold" in done.stdout
        refused = gits(platform, "train", name, "--tune")
        assert refused.returncode == 1 and "tune" in refused.stderr
    else:
        if "--tune" in RETRAINING[task]:
            assert result["tuning"]["trials"] >= 1 and "tuned" in done.stdout
        assert result["ensemble"]["method"] == "blend" and "ensemble: blend" in done.stdout


def check_outputs(task: Task, rows: pd.DataFrame) -> None:
    """Each row holds what its task's model gives (contract: prediction and score)."""
    assert rows["model_version"].notna().all()
    if task is Task.regression:
        assert all(isinstance(v, float) and math.isfinite(v) for v in rows["prediction"])
        assert rows["prediction_score"].isna().all()
    elif task is Task.classification:
        assert set(rows["prediction"]) == {IN_SPEC, OFF_SPEC}  # both classes predicted
        scores = rows["prediction_score"].astype(float)
        # The probability of the predicted class: at least 1/2 of two classes.
        assert ((scores >= 0.5) & (scores <= 1.0)).all()
    else:
        assert set(rows["prediction"]) <= {0, 1} and rows["prediction"].sum() > 0
        assert np.isfinite(rows["prediction_score"].astype(float)).all()


def check_most_anomalies_are_flagged(name: str, rows: pd.DataFrame) -> None:
    """At least 80% of the injected anomalies in the streamed minutes have a flagged
    minute, and most flags fall inside an injected anomaly (precision >= 0.8)."""
    data = DEMOS[name].generate(demo_config())
    assert isinstance(data, AnomalyDemoData)
    flags = dict(zip(rows["message_id"].str.split("~").str[0], rows["prediction"], strict=True))
    ids = data.production["message_id"].tolist()
    events = data.events[
        (data.events["split"] == "production") & (data.events["last_row"] < MESSAGES)
    ]
    assert len(events) >= 5
    found = [
        any(flags[ids[i]] for i in range(e.first_row, e.last_row + 1)) for e in events.itertuples()
    ]
    assert np.mean(found) >= 0.8, events.assign(found=found)
    truth = data.ground_truth.set_index("message_id")["anomaly"]
    flagged = [i for i, f in flags.items() if f == 1]
    assert truth.loc[flagged].mean() >= 0.8
