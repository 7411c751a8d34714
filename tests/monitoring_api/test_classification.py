"""Nothing is specific to the demo: a classification use case with a text feature gets
label-aware drift and classification metrics, from its definition alone."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score

from gits_common.schemas import Column, ColumnType, Task, UseCase

GRADES = np.array(["A", "B", "C"])


def batches(n: int, *, seed: int, lines: list[str], prefix: str) -> pd.DataFrame:
    """n inspected batches: pressure and size, the line that made them, their grade."""
    rng = np.random.default_rng(seed)
    pressure = rng.normal(1.0, 0.2, n)
    return pd.DataFrame(
        {
            "message_id": [f"{prefix}-{i}" for i in range(n)],
            "ts": pd.date_range("2025-01-01", periods=n, freq="min", tz="UTC")
            + pd.Timedelta(days=30 if prefix == "p" else 0),
            "pressure": pressure,
            "line": rng.choice(lines, n),
            "batch_size": rng.integers(10, 20, n),
            "grade": GRADES[np.digitize(pressure, [0.9, 1.1])],
        }
    )


@pytest.fixture(scope="module")
def graded(stage):
    """A classification use case; in production only line L2 runs, and every fifth
    prediction is wrong."""
    use_case = UseCase(
        name=f"grading_{uuid.uuid4().hex[:8]}",
        task=Task.classification,
        features=[
            Column(name="pressure"),
            Column(name="line", type=ColumnType.text),
            Column(name="batch_size", type=ColumnType.int),
        ],
        target=Column(name="grade", type=ColumnType.text),
        time_column="ts",
    )
    stage.register(use_case)
    stage.insert(use_case, "training", batches(2000, seed=1, lines=["L1", "L2"], prefix="t"))
    production = batches(600, seed=2, lines=["L2"], prefix="p")
    wrong = np.arange(len(production)) % 5 == 0
    predicted = np.where(wrong, np.roll(production["grade"], 1), production["grade"])
    rows = production.drop(columns=["grade"]).assign(prediction=predicted)
    stage.insert(use_case, "production", rows)
    labelled = production.iloc[300:]  # the newest: those the history looks at
    stage.label(use_case, labelled)
    return use_case, labelled.assign(prediction=predicted[300:])


def report(client, name, kind):
    response = client.get(f"/monitoring_api/use_cases/{name}/reports/{kind}")
    assert response.status_code == 200, response.text
    return response.json()["metrics"]


def test_a_text_feature_drifts_by_jensen_shannon_and_numbers_by_wasserstein(client, graded):
    use_case, _ = graded

    metrics = report(client, use_case.name, "data_drift")

    # 600 rows against 2,000: enough for distances
    assert metrics["features"]["line"]["method"] == "Jensen-Shannon distance"
    assert metrics["features"]["pressure"]["method"] == "Wasserstein distance (normed)"
    assert set(metrics["features"]) == {"pressure", "line", "batch_size"}
    assert metrics["features"]["line"]["drifted"]  # only L2 runs now
    assert not metrics["features"]["pressure"]["drifted"]


def test_classification_performance_is_accuracy_and_macro_scores(client, graded):
    use_case, labelled = graded

    metrics = report(client, use_case.name, "model_performance")

    truth, predicted = labelled["grade"], labelled["prediction"]
    assert metrics["current"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert metrics["current"]["f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    expected = precision_score(truth, predicted, average="macro")
    assert metrics["current"]["precision"] == pytest.approx(expected)
    assert metrics["reference"] is None  # no service is bound to a model to score it
    reason = f"no service of use case {use_case.name!r} is bound to a model"
    assert metrics["model"] == {"name": None, "reason": reason}


def test_label_drift_and_prediction_drift_compare_label_shares(client, graded):
    use_case, labelled = graded

    target = report(client, use_case.name, "target_drift")
    predictions = report(client, use_case.name, "prediction_drift")

    assert target["current"]["rows"] == 300
    shares = labelled["grade"].value_counts(normalize=True)
    assert target["current"]["top_shares"] == pytest.approx(shares.to_dict())
    assert predictions["current"]["rows"] == 600
    assert "reference target" in predictions["compared_with"]


def test_history_records_accuracy_and_f1(client, graded):
    use_case, labelled = graded

    response = client.post(f"/monitoring_api/use_cases/{use_case.name}/history/run")

    assert response.status_code == 200, response.text
    values = {v["metric"]: v["value"] for v in response.json()["values"] if v["feature"] is None}
    truth, predicted = labelled["grade"], labelled["prediction"]
    assert values["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert values["f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
