"""Each task's own monitoring, through the served platform slice: a binary classifier's
realised report and its estimated performance before the labels, an anomaly model's
flag rate, events and alert, and a regression's estimated MAE. The use cases, models
(scikit-learn and pyod, as PyCaret's final steps are) and rows are the tests' own."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyod.models.iforest import IForest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml import modeling
from tests.monitoring_api.conftest import DEMO, Stage, sampled

SENSORS = [f"x{i}" for i in range(5)]
WEIGHTS = np.array([1.5, -1.0, 0.8, 0.0, 0.5])
START = pd.Timestamp("2025-03-01", tz="UTC")


def sensors(n: int, seed: int, *, start: pd.Timestamp, shift: float = 0.0) -> pd.DataFrame:
    """n rows a minute apart of five sensors; `shift` moves x0 (covariate shift)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 5))
    x[:, 0] += shift
    frame = pd.DataFrame(x, columns=SENSORS)
    frame.insert(0, "ts", pd.date_range(start, periods=n, freq="min"))
    frame.insert(0, "message_id", [f"m{seed}-{i}" for i in range(n)])
    return frame


def graded(n: int, seed: int, *, start: pd.Timestamp, shift: float = 0.0) -> pd.DataFrame:
    """Sensor rows and their grade, about 16% off_spec (in_spec otherwise)."""
    frame = sensors(n, seed, start=start, shift=shift)
    rng = np.random.default_rng(seed + 1)
    off = rng.random(n) < 1 / (1 + np.exp(-(frame[SENSORS].to_numpy() @ WEIGHTS - 2.5)))
    return frame.assign(grade=np.where(off, "off_spec", "in_spec"))


def upload(stage: Stage, use_case: UseCase, pipeline: Any, features: list[str]) -> str:
    """Upload the model as version 1 and bind a service to it; its label."""
    with stage.http("queue_manager") as qm:
        form = {
            "name": use_case.name,
            "use_case": use_case.name,
            "task": use_case.task.value,
            "features": json.dumps(features),
        }
        files = {"file": ("model.pkl", modeling.to_bytes(pipeline))}
        answer = qm.post("/queue_manager/algorithms", data=form, files=files)
        assert answer.status_code < 300, answer.text
        binding = {"routing_key": f"mon.{use_case.name}", "algorithm_name": use_case.name}
        qm.put(f"/queue_manager/services/svc_{use_case.name}", json=binding).raise_for_status()
    return f"{use_case.name}:1"


def predicted_rows(use_case: UseCase, pipeline: Any, readings: pd.DataFrame) -> pd.DataFrame:
    """Production rows as a worker stores them: prediction, prediction_score, version."""
    found = modeling.predict(
        pipeline,
        readings[SENSORS],
        task=use_case.task,
        label_type=modeling.prediction_type(use_case),
    )
    return readings[["message_id", "ts", *SENSORS]].assign(
        prediction=found.labels, prediction_score=found.scores, model_version=f"{use_case.name}:1"
    )


def sensor_case(prefix: str, task: Task, target: Column) -> UseCase:
    return UseCase(
        name=f"{prefix}_{uuid.uuid4().hex[:8]}",
        task=task,
        features=[Column(name=s) for s in SENSORS],
        target=target,
        time_column="ts",
    )


@pytest.fixture(scope="module")
def grading(stage):
    """A binary classification use case and its model; production: 600 steady rows then
    600 with x0 shifted toward the boundary, the older half labelled."""
    use_case = sensor_case("cls", Task.classification, Column(name="grade", type=ColumnType.text))
    stage.register(use_case)
    training = graded(5000, 1, start=START - pd.Timedelta(days=30))
    model = LogisticRegression().fit(training[SENSORS], training["grade"])
    stage.insert(use_case, "training", training)
    stage.insert(use_case, "testing", graded(2000, 2, start=START - pd.Timedelta(days=10)))
    upload(stage, use_case, model, SENSORS)
    steady = graded(600, 3, start=START)
    shifted = graded(600, 4, start=START + pd.Timedelta(minutes=600), shift=1.0)
    production = pd.concat([steady, shifted], ignore_index=True)
    rows = predicted_rows(use_case, model, production)
    stage.insert(use_case, "production", rows)
    stage.label(use_case, production.iloc[:600])
    return use_case, production.assign(
        prediction=rows["prediction"], prediction_score=rows["prediction_score"]
    )


def get(client, url: str, **params: Any) -> dict[str, Any]:
    answer = client.get(url, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_classification_report_is_sklearns_on_the_labelled_rows(client, grading):
    use_case, production = grading

    found = get(client, f"/monitoring_api/use_cases/{use_case.name}/classification", last=1200)

    done = production.iloc[:600]
    truth, said = done["grade"], done["prediction"]
    assert found["labelled_rows"] == 600 and found["rows"] == 1200
    assert found["positive_class"] == "off_spec"  # the minority of the training table
    assert found["accuracy"] == pytest.approx(accuracy_score(truth, said))
    assert found["precision"] == pytest.approx(precision_score(truth, said, average="macro"))
    assert found["recall"] == pytest.approx(recall_score(truth, said, average="macro"))
    assert found["f1"] == pytest.approx(f1_score(truth, said, average="macro"))
    per_class = {c["label"]: c for c in found["per_class"]}
    assert per_class["off_spec"]["recall"] == pytest.approx(
        recall_score(truth, said, pos_label="off_spec")
    )
    labels = ["in_spec", "off_spec"]
    assert found["confusion_matrix"] == {
        "labels": labels,
        "counts": confusion_matrix(truth, said, labels=labels).tolist(),
    }
    off = np.where(said == "off_spec", done["prediction_score"], 1 - done["prediction_score"])
    assert found["roc_auc"] == pytest.approx(roc_auc_score(truth == "off_spec", off))
    assert found["model"] == {"name": f"{use_case.name}:1", "reason": None}


def test_probabilities_drift_when_the_sensors_shift(client, grading):
    use_case, _ = grading
    url = f"/monitoring_api/use_cases/{use_case.name}/classification"
    first, second = START.isoformat(), (START + pd.Timedelta(minutes=600)).isoformat()

    # compared with the model's probabilities on the held-out testing rows
    steady = get(client, url, start=first, end=second, reference="testing")
    shifted = get(client, url, start=second, reference="testing")

    steady, shifted = steady["prediction_drift"], shifted["prediction_drift"]
    assert steady["column"] == "positive_probability"
    assert shifted["current_mean"] > steady["current_mean"] + 0.05
    assert shifted["drifted"] and not steady["drifted"]


def test_estimated_accuracy_tracks_the_realised_and_goes_on_without_labels(client, grading):
    use_case, production = grading
    url = f"/monitoring_api/use_cases/{use_case.name}/performance/estimated"
    middle = START + pd.Timedelta(minutes=600)

    # one day-long bucket for each half: the steady labelled rows, the shifted unlabelled
    steady = get(client, url, start=START.isoformat(), end=middle.isoformat(), bucket_seconds=86400)
    shifted = get(client, url, start=middle.isoformat(), bucket_seconds=86400)

    assert steady["method"] == "CBPE" and steady["reference"]["table"] == "testing"
    (before,), (after,) = steady["buckets"], shifted["buckets"]
    assert before["labelled_rows"] == 600 and after["realised"] is None
    assert before["estimated"]["accuracy"] == pytest.approx(
        before["realised"]["accuracy"], abs=0.05
    )
    truth = production.iloc[600:]
    realised_later = accuracy_score(truth["grade"], truth["prediction"])
    assert after["estimated"]["accuracy"] == pytest.approx(realised_later, abs=0.05)
    assert after["estimated"]["accuracy"] < before["estimated"]["accuracy"]


def test_history_records_the_estimate_then_the_realised_metrics(client, stage, grading):
    use_case, production = grading
    url = f"/monitoring_api/use_cases/{use_case.name}/history/run"

    # The newest 500 rows (a history window) have no label yet: only the estimate
    early = client.post(url)
    assert early.status_code == 200, early.text
    names = {v["metric"] for v in early.json()["values"] if v["feature"] is None}
    assert {"estimated_accuracy", "estimated_precision", "estimated_f1"} <= names
    assert "accuracy" not in names

    # Once their labels come, the realised metrics beside it (this is the last test of
    # the module that reads the shifted half)
    stage.label(use_case, production.iloc[600:])
    late = client.post(url).json()
    values = {v["metric"]: v["value"] for v in late["values"] if v["feature"] is None}
    done = production.iloc[-500:]
    assert values["accuracy"] == pytest.approx(accuracy_score(done["grade"], done["prediction"]))
    assert {"precision", "recall", "f1", "roc_auc", "reference_accuracy"} <= set(values)
    assert values["estimated_accuracy"] == pytest.approx(values["accuracy"], abs=0.05)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"bucket_seconds": 0}, "bucket_seconds"),
        ({"bucket_seconds": 10**9}, "bucket_seconds"),
        ({"start": "2025-03-02T00:00:00Z", "end": "2025-03-01T00:00:00Z"}, "start"),
        ({"last": 10, "start": "2025-03-01T00:00:00Z"}, "last"),
        ({"merge_seconds": 0}, "merge_seconds"),
    ],
)
def test_bad_parameters_are_422s_naming_them(client, grading, anomalous, params, named):
    use_case, _ = anomalous

    answer = client.get(f"/monitoring_api/use_cases/{use_case.name}/anomalies", params=params)

    assert answer.status_code == 422
    assert named in answer.text


def test_an_endpoint_of_another_task_is_a_409_naming_it(client, grading, anomalous):
    classification, _ = grading
    anomaly, _ = anomalous

    wrong = client.get(f"/monitoring_api/use_cases/{classification.name}/anomalies")
    other = client.get(f"/monitoring_api/use_cases/{anomaly.name}/classification")

    assert wrong.status_code == 409
    assert wrong.json()["detail"].startswith("this endpoint needs a use case of task anomaly")
    assert other.status_code == 409
    assert "needs a use case of task classification" in other.json()["detail"]


SPIKES = [(200, 212), (500, 503), (800, 830)]  # injected anomalies: [first, last) minute


@pytest.fixture(scope="module")
def anomalous(stage):
    """An anomaly use case (target `anomaly`, int 0/1) and a pyod isolation forest with
    a score threshold; production: 1,000 minutes with three injected spikes, labelled."""
    use_case = sensor_case("ano", Task.anomaly, Column(name="anomaly", type=ColumnType.int))
    stage.register(use_case)
    training = sensors(3000, 11, start=START - pd.Timedelta(days=30)).assign(anomaly=0)
    model = Pipeline(
        [("scale", StandardScaler()), ("model", IForest(contamination=0.01, random_state=0))]
    ).fit(training[SENSORS])
    stage.insert(use_case, "training", training)
    upload(stage, use_case, model, SENSORS)
    production = sensors(1000, 12, start=START).assign(anomaly=0)
    for first, last in SPIKES:
        production.loc[first : last - 1, ["x1", "x3"]] += 6.0
        production.loc[first : last - 1, "anomaly"] = 1
    rows = predicted_rows(use_case, model, production)
    stage.insert(use_case, "production", rows)
    stage.label(use_case, production)
    return use_case, production.assign(
        prediction=rows["prediction"], prediction_score=rows["prediction_score"]
    )


def test_anomalies_give_the_rate_per_bucket_and_the_flagged_events(client, anomalous):
    use_case, production = anomalous
    url = f"/monitoring_api/use_cases/{use_case.name}/anomalies"

    found = get(client, url, last=1000, bucket_seconds=3600, merge_seconds=300)

    flagged = production["prediction"] == 1
    assert found["rows"] == 1000 and found["flagged"] == int(flagged.sum())
    assert sum(b["rows"] for b in found["rate"]) == 1000
    assert all(b["rate"] == pytest.approx(b["flagged"] / b["rows"]) for b in found["rate"])
    assert found["threshold"] == pytest.approx(model_threshold(found))
    assert found["model_version"] == f"{use_case.name}:1"
    # every injected spike lies within a flagged event
    spans = [(pd.Timestamp(e["start"]), pd.Timestamp(e["end"])) for e in found["events"]]
    for first, last in SPIKES:
        begins, ends = production["ts"].iloc[first], production["ts"].iloc[last - 1]
        assert any(s <= begins and ends <= e for s, e in spans), (first, last, spans)
    truth = production["anomaly"]
    realised = found["realised"]
    assert realised["rows"] == 1000 and realised["anomalies"] == int(truth.sum())
    assert realised["recall"] == pytest.approx(recall_score(truth, flagged))
    assert realised["precision"] == pytest.approx(precision_score(truth, flagged))
    assert found["alert_threshold"] == 0.1 and found["alerting"] is False


def model_threshold(found: dict[str, Any]) -> float:
    """The score threshold the flags imply: between the flagged and the rest."""
    assert found["model"]["name"] is not None
    return found["threshold"]


def test_an_anomaly_rate_above_its_threshold_raises_an_alert(client, anomalous, webhook):
    use_case, production = anomalous
    base = f"/monitoring_api/use_cases/{use_case.name}"
    newest = production.iloc[-500:]  # a history point's window (MONITORING_WINDOW_ROWS)
    rate = float((newest["prediction"] == 1).mean())
    limits = {"anomaly_rate": rate / 2, "webhook_url": webhook.url, "drift_share": None}
    assert client.put(f"{base}/thresholds", json=limits).status_code == 200

    point = client.post(f"{base}/history/run").json()

    values = {v["metric"]: v["value"] for v in point["values"] if v["feature"] is None}
    assert values["anomaly_rate"] == pytest.approx(rate)
    assert {"precision", "recall", "f1"} <= set(values)
    alerts = [a for a in point["alerts"] if a["metric"] == "anomaly_rate"]
    assert [(a["value"], a["threshold"]) for a in alerts] == [
        (pytest.approx(rate), pytest.approx(rate / 2))
    ]
    assert [a["metric"] for a in webhook.received] == ["anomaly_rate"]
    assert get(client, f"{base}/anomalies", last=1000)["alerting"] is True


def test_anomaly_use_cases_have_no_estimate_and_say_why(client, anomalous):
    use_case, _ = anomalous

    found = get(client, f"/monitoring_api/use_cases/{use_case.name}/performance/estimated")

    assert found["method"] is None and "anomaly" in found["reason"]


def test_estimated_mae_of_the_demo_regression_tracks_the_realised(client, stage):
    # Given the demo's regression with its linear model, 400 lab-sampled rows labelled
    use_case = stage.use_case("dle")
    readings = sampled(DEMO).iloc[:400]
    stage.produce(use_case, readings)
    stage.label(use_case, readings)

    found = get(
        client,
        f"/monitoring_api/use_cases/{use_case.name}/performance/estimated",
        last=400,
        bucket_seconds=10**6,
    )

    # Then DLE's MAE is within 15% of the realised one
    assert found["method"] == "DLE" and found["metrics"] == ["mae", "rmse"]
    assert found["estimated"]["mae"] == pytest.approx(found["realised"]["mae"], rel=0.15)
    assert sum(b["rows"] for b in found["buckets"]) == 400


def test_a_classification_window_without_labels_or_model_says_so(client, stage):
    # The Postman collection's case: rows with predictions, no label yet, no service.
    use_case = sensor_case(
        "cls_bare", Task.classification, Column(name="grade", type=ColumnType.text)
    )
    stage.register(use_case)
    stage.insert(use_case, "training", graded(300, 11, start=START - pd.Timedelta(days=3)))
    rows = graded(200, 12, start=START).drop(columns=["grade"])
    flags = np.where(np.arange(200) % 7 == 0, "off_spec", "in_spec")
    stage.insert(use_case, "production", rows.assign(prediction=flags, prediction_score=0.8))

    found = get(client, f"/monitoring_api/use_cases/{use_case.name}/classification", last=500)
    estimated = get(client, f"/monitoring_api/use_cases/{use_case.name}/performance/estimated")

    assert (found["rows"], found["labelled_rows"]) == (200, 0)
    assert found["accuracy"] is None and found["confusion_matrix"]["counts"] == []
    assert found["model"]["name"] is None and found["model"]["reason"]
    assert estimated["method"] is None and estimated["reason"]


@pytest.mark.parametrize(
    ("fixture", "route"),
    [
        ("grading", "classification"),
        ("grading", "performance/estimated"),
        ("anomalous", "anomalies"),
        ("anomalous", "performance/estimated"),
    ],
)
def test_a_window_without_production_rows_is_a_422_saying_so(client, request, fixture, route):
    # A user's own use case before its first message, or a window in the past: was a 500.
    use_case, _ = request.getfixturevalue(fixture)
    far = {"start": "2001-01-01T00:00:00Z", "end": "2001-01-02T00:00:00Z"}
    answer = client.get(f"/monitoring_api/use_cases/{use_case.name}/{route}", params=far)
    assert answer.status_code == 422, answer.text
    assert "no production row in the window" in answer.json()["detail"]
