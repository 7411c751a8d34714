"""Labels keep the type their use case declares, from the rows read back to the metrics.

The issue: a classification use case with an int target, some production rows not yet
labelled. ml_data_api answers the missing labels as null, pandas reads the column as
floats, and the label 1.0 was compared with the prediction 1: the history recorded
accuracy 0.0, the model_performance report answered 500, and target drift reported 0.83
on identical label distributions. Here each label type (int, bool, text with values that
look like numbers, float) gets a window half of whose rows are labelled."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from gits_common.clients import rows_from_frame
from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml import modeling
from tests.model_files import fitted
from tests.monitoring_api.conftest import HISTORY_WINDOW

FEATURES = ["x1", "x2"]
TRAINING_ROWS, PRODUCTION_ROWS = 4000, 1000

# (label type, the two classes, whether a model is uploaded). scikit-learn's classifiers
# take no fractional class, so the float classes 0.5 and 2.5 come without a model.
CASES: dict[str, tuple[ColumnType, list[Any], bool]] = {
    "int": (ColumnType.int, [0, 1], True),
    "bool": (ColumnType.bool, [False, True], True),
    "text": (ColumnType.text, ["0", "1"], True),
    "float": (ColumnType.float, [0.0, 1.0], True),
    "fractional_float": (ColumnType.float, [0.5, 2.5], False),
}


@dataclass
class Labelled:
    """A classification use case and what it was given."""

    use_case: UseCase
    classes: list[Any]
    training: pd.DataFrame
    production: pd.DataFrame  # with the true label of every row, known or not yet
    known: pd.Series  # which production rows are labelled
    pipeline: Any | None

    def predicted(self, frame: pd.DataFrame) -> list[Any]:
        """The model's labels as a worker stores them."""
        use_case = self.use_case
        return modeling.predict(
            self.pipeline,
            frame[FEATURES],
            task=use_case.task,
            label_type=modeling.prediction_type(use_case),
        ).labels

    def scored(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows[self.known.loc[rows.index]]


def readings(n: int, *, seed: int, prefix: str, days: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "message_id": [f"{prefix}-{i}" for i in range(n)],
            "ts": pd.date_range("2025-01-01", periods=n, freq="min", tz="UTC")
            + pd.Timedelta(days=days),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
        }
    )


def upload(stage, use_case: UseCase, pipeline: Any) -> None:
    form = {
        "name": use_case.name,
        "use_case": use_case.name,
        "task": use_case.task.value,
        "features": json.dumps(FEATURES),
    }
    if use_case.target is not None:
        form["target"] = use_case.target.name
    files = {"file": ("model.pkl", modeling.to_bytes(pipeline))}
    with stage.http("queue_manager") as qm:
        qm.post("/queue_manager/algorithms", data=form, files=files).raise_for_status()
        # Monitoring finds a use case's model through the service bound to it.
        binding = {"routing_key": f"mon.{use_case.name}", "algorithm_name": use_case.name}
        qm.put(f"/queue_manager/services/svc_{use_case.name}", json=binding).raise_for_status()


@pytest.fixture(scope="module", params=list(CASES))
def labelled_case(request, stage) -> Labelled:
    """Training rows with classes in equal shares; production rows predicted by the model
    (or, without one, right but for every third), every other one labelled, the labelled
    ones in the same equal shares."""
    column_type, classes, with_model = CASES[request.param]
    use_case = UseCase(
        name=f"labels_{request.param}_{uuid.uuid4().hex[:8]}",
        task=Task.classification,
        features=[Column(name=f) for f in FEATURES],
        target=Column(name="grade", type=column_type),
        time_column="ts",
    )
    stage.register(use_case)
    training = readings(TRAINING_ROWS, seed=1, prefix="t", days=0)
    training["grade"] = [classes[i % 2] for i in range(TRAINING_ROWS)]
    stage.insert(use_case, "training", training)
    production = readings(PRODUCTION_ROWS, seed=2, prefix="p", days=30)
    production["grade"] = [classes[(i // 2) % 2] for i in range(PRODUCTION_ROWS)]
    known = pd.Series(production.index % 2 == 0, index=production.index)
    case = Labelled(use_case, classes, training, production, known, None)
    if with_model:
        case.pipeline = fitted(FEATURES, classes=classes, seed=3)
        upload(stage, use_case, case.pipeline)
        production["prediction"] = case.predicted(production)
        production["model_version"] = f"{use_case.name}:1"
    else:
        wrong = production.index % 3 == 0
        production["prediction"] = np.where(wrong, classes[1], production["grade"]).tolist()
    stage.insert(use_case, "production", production.drop(columns=["grade"]))
    truth = rows_from_frame(production[case.known][["message_id", "grade"]])
    labels = [{"message_id": r["message_id"], "value": r["grade"]} for r in truth]
    with stage.http("ml_data_api") as ml:
        url = f"/ml_data_api/use_cases/{use_case.name}/labels"
        ml.post(url, json={"labels": labels}).raise_for_status()
    return case


def by_index(case: Labelled, values: Any) -> list[int]:
    """Labels as the index of their class: a coding scikit-learn reads whatever the type."""
    return [case.classes.index(v) for v in values]


def accuracy(case: Labelled, truth: Any, predicted: Any) -> float:
    return float(accuracy_score(by_index(case, truth), by_index(case, predicted)))


def macro_f1(case: Labelled, truth: Any, predicted: Any) -> float:
    return float(f1_score(by_index(case, truth), by_index(case, predicted), average="macro"))


def report(client, case: Labelled, kind: str) -> dict[str, Any]:
    url = f"/monitoring_api/use_cases/{case.use_case.name}/reports/{kind}"
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_history_records_the_accuracy_scikit_learn_gives(client, labelled_case):
    case = labelled_case

    response = client.post(f"/monitoring_api/use_cases/{case.use_case.name}/history/run")

    assert response.status_code == 200, response.text
    point = response.json()
    values = {v["metric"]: v["value"] for v in point["values"] if v["feature"] is None}
    scored = case.scored(case.production.iloc[-HISTORY_WINDOW:])
    assert point["labelled_rows"] == len(scored) == HISTORY_WINDOW // 2
    truth, predicted = scored["grade"], scored["prediction"]
    assert values["accuracy"] == pytest.approx(accuracy(case, truth, predicted), abs=0.001)
    assert values["f1"] == pytest.approx(macro_f1(case, truth, predicted), abs=0.001)
    if case.pipeline is not None:
        # ml_data_api copied the labelled production rows into the training table: those
        # from before the window are reference rows too
        earlier = case.scored(case.production.iloc[:-HISTORY_WINDOW])
        reference = pd.concat([case.training, earlier])
        expected = accuracy(case, reference["grade"], case.predicted(reference))
        assert values["reference_accuracy"] == pytest.approx(expected, abs=0.001)


def test_model_performance_is_the_accuracy_scikit_learn_gives(client, labelled_case):
    case = labelled_case

    metrics = report(client, case, "model_performance")["metrics"]

    scored = case.scored(case.production)
    truth, predicted = scored["grade"], scored["prediction"]
    assert metrics["current"]["rows"] == PRODUCTION_ROWS // 2
    assert metrics["current"]["accuracy"] == pytest.approx(
        accuracy(case, truth, predicted), abs=0.001
    )
    assert metrics["current"]["f1"] == pytest.approx(macro_f1(case, truth, predicted), abs=0.001)
    if case.pipeline is not None:
        on_training = case.predicted(case.training)
        expected = accuracy(case, case.training["grade"], on_training)
        assert metrics["reference"]["accuracy"] == pytest.approx(expected, abs=0.001)


def test_identical_label_distributions_show_no_target_drift(client, labelled_case):
    # Labelled production rows and training rows hold each class in exactly equal shares
    metrics = report(client, labelled_case, "target_drift")["metrics"]

    assert metrics["current"]["rows"] == PRODUCTION_ROWS // 2
    assert metrics["score"] == pytest.approx(0, abs=1e-6)
    assert not metrics["drifted"]
    assert metrics["method"] == "Jensen-Shannon distance"
    shares = {str(c): 0.5 for c in labelled_case.classes}
    assert metrics["current"]["top_shares"] == pytest.approx(shares)
    assert metrics["reference"]["top_shares"] == pytest.approx(shares)


def test_predictions_compare_with_the_models_own_of_their_type(client, labelled_case):
    case = labelled_case

    metrics = report(client, case, "prediction_drift")["metrics"]

    if case.pipeline is None:  # compared with the reference's labels, of the same type
        assert metrics["compared_with"].startswith("the reference target")
        assert metrics["reference"]["top_shares"] == {str(c): 0.5 for c in case.classes}
        assert set(metrics["current"]["top_shares"]) == {str(c) for c in case.classes}
        return
    # The same model on features of the same distribution: its labels' shares agree
    assert metrics["model"] == {"name": f"{case.use_case.name}:1", "reason": None}
    assert metrics["score"] < 0.05 and not metrics["drifted"]
    assert metrics["method"] == "Jensen-Shannon distance"
    on_training = pd.Series(case.predicted(case.training)).value_counts(normalize=True)
    expected = {str(label): share for label, share in on_training.items()}
    assert metrics["reference"]["top_shares"] == pytest.approx(expected)


def test_data_quality_counts_labels_of_their_type(client, labelled_case):
    metrics = report(client, labelled_case, "data_quality")["metrics"]

    grade = metrics["columns"]["grade"]
    assert grade["current"]["missing_share"] == pytest.approx(0.5)
    assert grade["current"]["unique"] == 2
    assert grade["current"]["top_shares"] == grade["reference"]["top_shares"]


@pytest.fixture(scope="module")
def anomalies(stage) -> tuple[UseCase, Any, pd.DataFrame]:
    """An anomaly use case without a target: its predictions are ints (0 or 1)."""
    use_case = UseCase(
        name=f"labels_anomaly_{uuid.uuid4().hex[:8]}",
        task=Task.anomaly,
        features=[Column(name=f) for f in FEATURES],
        time_column="ts",
    )
    stage.register(use_case)
    training = readings(TRAINING_ROWS, seed=1, prefix="t", days=0)
    stage.insert(use_case, "training", training)
    pipeline = fitted(FEATURES, classes=[0, 1], seed=3)
    upload(stage, use_case, pipeline)
    production = readings(PRODUCTION_ROWS, seed=2, prefix="p", days=30)
    production["prediction"] = pipeline.predict(production[FEATURES]).tolist()
    production["model_version"] = f"{use_case.name}:1"
    stage.insert(use_case, "production", production)
    return use_case, pipeline, training


def test_anomaly_flags_compare_as_ints_with_the_models_own(client, anomalies):
    use_case, pipeline, training = anomalies

    response = client.get(f"/monitoring_api/use_cases/{use_case.name}/reports/prediction_drift")

    assert response.status_code == 200, response.text
    metrics = response.json()["metrics"]
    assert metrics["model"]["reason"] is None
    assert metrics["score"] < 0.05 and not metrics["drifted"]
    shares = pd.Series(pipeline.predict(training[FEATURES])).value_counts(normalize=True)
    assert metrics["reference"]["top_shares"] == pytest.approx(
        {str(int(k)): v for k, v in shares.items()}
    )
