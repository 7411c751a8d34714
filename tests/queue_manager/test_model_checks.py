"""Every upload is checked before it is stored, in a sandbox process: it loads, names
its features and the use case has them, the use case exists with the upload's task, and
the model predicts rows of the use case with the output its task promises. A failure is
a 422 naming the check, and nothing is stored (issue #10's observed cases and their
siblings)."""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import pickle
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from gits_common.schemas import Column, ColumnType, Task, UseCase
from queue_manager.app import create_app
from tests.model_files import fitted, model_bytes
from tests.queue_manager.conftest import CLASSIFIED, FEATURES, model, upload


def dumped(thing: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(thing, buffer)
    return buffer.getvalue()


class Reduced:
    """A pickle that calls `function(*args)` when loaded (only stdlib functions, so the
    sandbox can import them)."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.function, self.args)


def refused(client: TestClient, response: httpx.Response, check: str) -> str:
    """Assert a 422 naming `check`, with nothing stored; the reason."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert f"model check '{check}' failed" in body["detail"], body
    assert body["errors"][0]["check"] == check
    assert client.get("/queue_manager/algorithms").json() == []
    return str(body["errors"][0]["reason"])


def test_a_text_file_is_refused_as_not_loadable(client: TestClient):
    # echo hello > junk.pkl
    reason = refused(client, upload(client, "junk", b"hello\n"), "load")
    assert "not a loadable model file" in reason


@pytest.mark.parametrize(
    "content",
    [pickle.dumps({"a": 1}), pickle.dumps([1, 2]), dumped(np.zeros(3)), b"\x80\x04N."],
    ids=["dict", "list", "array", "None"],
)
def test_a_pickle_of_something_that_is_not_a_model_is_refused(client, content):
    reason = refused(client, upload(client, "thing", content), "load")
    assert "not a model" in reason


def test_a_feature_list_that_is_not_the_models_own_is_refused(client: TestClient):
    # The model reads temp_A, temp_B, humidity; the form says otherwise.
    response = upload(client, "demo", features=json.dumps(["temp_A", "temp_B", "pressure"]))
    reason = refused(client, response, "features")
    assert "pressure" in reason and "humidity" in reason


def test_a_feature_list_in_another_order_is_accepted_and_the_models_order_kept(client):
    # Given a model fitted on the features in an order of its own
    own_order = ["humidity", "temp_A", "temp_B"]
    content = model_bytes(own_order, seed=3)

    # When it is uploaded with the use case's order
    response = upload(client, "demo", content, features=json.dumps(FEATURES))

    # Then it is stored with the order the model reads, which workers call it with
    assert response.status_code == 201, response.text
    assert response.json()["features"] == own_order
    assert response.json()["check"]["features"] == own_order


def test_without_a_feature_list_the_model_says_which_it_reads(client: TestClient):
    response = upload(client, "demo", features=None)
    form_without = {"name": "bare", "use_case": "sensors", "task": "regression"}
    bare = client.post(
        "/queue_manager/algorithms", data=form_without, files={"file": ("m.pkl", model())}
    )
    assert response.status_code == bare.status_code == 201, bare.text
    assert bare.json()["features"] == FEATURES
    assert bare.json()["target"] == "quality"  # from the use case


def test_a_model_reading_features_the_use_case_lacks_is_refused(client: TestClient):
    content = model_bytes(["temp_A", "vibration"], seed=1)
    reason = refused(client, upload(client, "demo", content, features=None), "features")
    assert "vibration" in reason


def test_a_model_fitted_without_feature_names_is_refused(client: TestClient):
    unnamed = LinearRegression().fit(np.ones((5, 3)) * np.arange(5)[:, None], np.arange(5))
    reason = refused(client, upload(client, "demo", dumped(unnamed)), "features")
    assert "feature_names_in_" in reason


def test_a_model_for_a_use_case_that_does_not_exist_is_refused(client: TestClient):
    reason = refused(client, upload(client, "demo", use_case="no_such_line"), "use case")
    assert "no_such_line" in reason and "does not exist" in reason


def test_a_model_whose_task_is_not_the_use_cases_is_refused(client: TestClient):
    response = upload(client, "demo", use_case=CLASSIFIED.name, task="regression")
    reason = refused(client, response, "task")
    assert "classification" in reason


def test_a_regressor_uploaded_for_a_classification_use_case_is_refused(client: TestClient):
    # A regressor predicts numbers like 0.37, not the int labels of the target
    response = upload(client, "demo", use_case=CLASSIFIED.name, task="classification")
    reason = refused(client, response, "output")
    assert "int" in reason


def test_a_classifier_of_the_target_type_is_accepted(client: TestClient):
    content = model_bytes(FEATURES, classes=[0, 1], seed=2)
    response = upload(client, "sorter", content, use_case=CLASSIFIED.name, task="classification")
    assert response.status_code == 201, response.text
    assert response.json()["check"]["output"].startswith("int labels")


def test_a_model_that_predicts_nan_is_refused(client: TestClient):
    broken = fitted(FEATURES)
    broken.steps[-1][1].coef_ = np.array([np.nan, 1.0, 1.0])
    reason = refused(client, upload(client, "demo", dumped(broken)), "output")
    assert "finite numbers" in reason


def test_a_model_that_raises_when_it_predicts_is_refused(client: TestClient):
    # A step that, once fitted, cannot take a DataFrame: int(frame) raises TypeError
    raising = Pipeline([("step", FunctionTransformer()), ("model", LinearRegression())])
    raising.fit(pd.DataFrame(np.eye(4, 3), columns=FEATURES), [1.0, 2.0, 3.0, 4.0])
    raising.steps[0][1].func = int
    reason = refused(client, upload(client, "demo", dumped(raising)), "predict")
    assert "TypeError" in reason


def test_a_model_that_hangs_is_stopped_at_the_time_limit(settings, auth):
    # Given an app whose checks may take 2 s, and a file whose loading loops for hours
    # with only what the allow-list lets through (deque(range(10**13), maxlen=1))
    quick = create_app(dataclasses.replace(settings, validation_seconds=2, sandbox_preload=()))
    with TestClient(quick, headers=auth) as client:
        started = time.monotonic()
        endless = Reduced(collections.deque, Reduced(range, 10**13), 1)
        response = upload(client, "slow", pickle.dumps(endless))
        # Then it is refused within the limit, and the next upload works
        reason = refused(client, response, "limits")
        assert "longer than 2 s" in reason
        assert time.monotonic() - started < 20
        assert upload(client, "demo").status_code == 201


def test_a_model_that_eats_memory_is_stopped_at_the_memory_limit(settings, auth):
    limited = dataclasses.replace(settings, validation_memory_bytes=200 * 2**20)
    with TestClient(create_app(limited), headers=auth) as client:
        response = upload(client, "greedy", pickle.dumps(Reduced(bytearray, 2 * 2**30)))
        reason = refused(client, response, "limits")
        assert "200 MB" in reason
        assert upload(client, "demo").status_code == 201


def test_the_sandbox_holds_no_secret(sandbox):
    # The allow-list already keeps a file from reading anything; the sandbox is the
    # second wall: its process has none of the platform's secrets in its environment.
    sandbox.start()
    environment = Path(f"/proc/{sandbox.pid}/environ").read_bytes().decode(errors="replace")
    for name in ("GITS_ADMIN_TOKEN", "GITS_RUNTIME_TOKEN", "GITS_READ_TOKEN", "POSTGRES_PASSWORD"):
        assert name not in environment
        if os.environ.get(name):
            assert os.environ[name] not in environment
    assert ".env" not in {p.name for p in Path(f"/proc/{sandbox.pid}/cwd").resolve().iterdir()}


def test_rows_come_from_the_training_table_or_else_from_the_schema(client, ml_data_api_url, auth):
    # Given a use case with training rows, and one without
    name = f"checked_{uuid.uuid4().hex[:8]}"
    filled = UseCase(
        name=name,
        task=Task.regression,
        features=[Column(name=f, type=ColumnType.float) for f in FEATURES],
        target=Column(name="quality"),
    )
    with httpx.Client(base_url=ml_data_api_url, headers=auth) as ml:
        ml.post("/ml_data_api/use_cases", json=filled.model_dump(mode="json")).raise_for_status()
        rows = [
            {
                "timestamp": f"2025-01-01T00:0{i}:00Z",
                **dict.fromkeys(FEATURES, float(i)),
                "quality": 1.0,
            }
            for i in range(7)
        ]
        ml.post(
            f"/ml_data_api/use_cases/{name}/training/rows", json={"rows": rows}
        ).raise_for_status()

    from_training = upload(client, "a", use_case=name)
    from_schema = upload(client, "b")

    assert from_training.json()["check"]["rows_from"] == "training"
    assert from_training.json()["check"]["rows"] == 7
    assert from_schema.json()["check"]["rows_from"] == "schema"


def test_a_file_that_would_run_code_is_refused_and_the_marker_never_appears(client, tmp_path):
    # A pickle whose loading would write a marker file (os.system, as in MLflow's
    # CVE-2024-37052): refused by the allow-list before os is even looked at
    import os

    marker = tmp_path / "marker"
    content = pickle.dumps(Reduced(os.system, f"touch {marker}"))
    reason = refused(client, upload(client, "evil", content), "safety")
    assert "system" in reason
    assert not marker.exists()


def test_a_check_whose_sandbox_dies_refuses_the_file_and_the_next_upload_works(settings, auth):
    # A model that ends the sandbox process itself (the breaker's pickle ran
    # `kill -9 $PPID`): here the test kills the sandbox while it checks an endless file
    import signal
    import threading

    app = create_app(dataclasses.replace(settings, validation_seconds=30, sandbox_preload=()))
    with TestClient(app, headers=auth) as client:
        sandbox = app.state.queue_manager.sandbox
        sandbox.start()
        threading.Timer(2.0, lambda: os.kill(sandbox.pid, signal.SIGKILL)).start()
        endless = Reduced(collections.deque, Reduced(range, 10**13), 1)
        reason = refused(client, upload(client, "killer", pickle.dumps(endless)), "limits")
        assert "ended the process that checked it" in reason
        assert upload(client, "demo").status_code == 201


def test_a_model_naming_a_feature_twice_is_refused(client):
    doubled = LinearRegression().fit(pd.DataFrame(np.eye(3), columns=FEATURES), [1.0, 2.0, 3.0])
    doubled.feature_names_in_ = np.array(["temp_A", "temp_A", "humidity"], dtype=object)
    reason = refused(client, upload(client, "demo", dumped(doubled), features=None), "features")
    assert "twice" in reason
