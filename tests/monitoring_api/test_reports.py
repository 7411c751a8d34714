"""Reports through the API: each kind's summary holds the numbers a user would compute
from the same rows, the HTML stands alone, and the window is the one asked for."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.metrics import mean_absolute_error, r2_score

from gits_ml.demo import FEATURES, TARGET
from tests.monitoring_api.conftest import DEMO, sampled

# 600 rows against the 2,100 training rows are enough for drift distances; 80 labelled
# rows are not (drift.choose).
ROWS, LABELLED = 600, 80


@pytest.fixture(scope="module")
def reported(stage):
    """A use case with 600 production rows, the first 80 of them labelled."""
    use_case = stage.use_case("rep")
    readings = sampled(DEMO).iloc[:ROWS]
    stage.produce(use_case, readings)
    stage.label(use_case, readings.iloc[:LABELLED])
    return use_case, readings


def get_report(client, name, kind, **params):
    response = client.get(f"/monitoring_api/use_cases/{name}/reports/{kind}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_data_quality_summarises_every_column_of_both_sides(client, reported):
    use_case, readings = reported

    body = get_report(client, use_case.name, "data_quality")

    assert body["kind"] == "data_quality"
    assert body["reference"] == {"table": "training", "rows": len(DEMO.training)}
    assert body["current"]["rows"] == ROWS
    assert body["current"]["labelled_rows"] == LABELLED
    assert set(body["metrics"]["columns"]) == {*FEATURES, TARGET}
    first = body["metrics"]["columns"]["T_data_1_1"]
    assert first["current"]["mean"] == pytest.approx(readings["T_data_1_1"].mean())
    assert first["reference"]["max"] == pytest.approx(DEMO.training["T_data_1_1"].max())
    quality = body["metrics"]["columns"][TARGET]["current"]
    assert quality["missing_share"] == pytest.approx(1 - LABELLED / ROWS)
    assert body["evidently"]["metrics"]  # Evidently's own summary rides along


def test_data_drift_scores_every_feature_by_a_named_distance_on_a_large_window(client, reported):
    use_case, readings = reported

    metrics = get_report(client, use_case.name, "data_drift")["metrics"]

    assert metrics["drift_methods"]["min_effective_rows"] == 400
    assert set(metrics["features"]) == set(FEATURES)
    drifted = [f for f, v in metrics["features"].items() if v["drifted"]]
    assert metrics["drifted_features"] == len(drifted)
    assert metrics["drift_share"] == pytest.approx(len(drifted) / len(FEATURES))
    for feature, found in metrics["features"].items():
        assert found["method"] == "Wasserstein distance (normed)", feature
        assert (found["threshold"], found["drifted_when"]) == (0.1, "score >= 0.1")
        reference = DEMO.training[feature]
        expected = wasserstein_distance(reference, readings[feature]) / reference.std()
        assert found["score"] == pytest.approx(expected, rel=0.02), feature
        assert found["drifted"] == (found["score"] >= 0.1)


def test_a_window_too_small_for_distances_is_judged_by_a_test(client, reported):
    # 200 rows against 2,100: a distance's noise alone would cross 0.1 on about a
    # quarter of undrifted features (the issue); Kolmogorov-Smirnov's p-value does not
    use_case, readings = reported

    metrics = get_report(client, use_case.name, "data_drift", last=200)["metrics"]

    window = readings.iloc[-200:]
    # The labelled production rows, copied into the training table, are older than it
    reference = pd.concat([DEMO.training, readings.iloc[:LABELLED]])
    for feature, found in metrics["features"].items():
        assert found["method"] == "Kolmogorov-Smirnov test (p-value)", feature
        assert (found["threshold"], found["drifted_when"]) == (0.05, "score < 0.05")
        expected = ks_2samp(reference[feature], window[feature]).pvalue
        assert found["score"] == pytest.approx(expected, rel=1e-6), feature
        assert found["drifted"] == (found["score"] < 0.05)
    drifted = sum(v["drifted"] for v in metrics["features"].values())
    assert metrics["drift_share"] == pytest.approx(drifted / len(FEATURES))


def test_target_drift_compares_only_the_labelled_rows(client, reported):
    use_case, readings = reported

    metrics = get_report(client, use_case.name, "target_drift")["metrics"]

    labels = readings[TARGET].iloc[:LABELLED]
    assert metrics["column"] == TARGET
    assert metrics["current"]["rows"] == LABELLED
    assert metrics["current"]["mean"] == pytest.approx(labels.mean())
    assert metrics["reference"]["mean"] == pytest.approx(DEMO.training[TARGET].mean())
    # 80 labels are too few for a distance
    assert metrics["method"] == "Kolmogorov-Smirnov test (p-value)"
    assert metrics["score"] == pytest.approx(ks_2samp(DEMO.training[TARGET], labels).pvalue)
    assert metrics["drifted"] == (metrics["score"] < 0.05)


def test_prediction_drift_compares_with_the_models_predictions_on_the_reference(
    client, reported, pipeline
):
    use_case, readings = reported

    metrics = get_report(client, use_case.name, "prediction_drift")["metrics"]

    assert metrics["model"] == {"name": f"{use_case.name}:1", "reason": None}
    assert "model's predictions" in metrics["compared_with"]
    on_reference = pipeline.predict(DEMO.training[FEATURES])
    in_production = pipeline.predict(readings[FEATURES])
    expected = wasserstein_distance(on_reference, in_production) / np.std(on_reference, ddof=1)
    assert metrics["method"] == "Wasserstein distance (normed)"
    assert metrics["score"] == pytest.approx(expected, rel=0.02)
    assert metrics["reference"]["mean"] == pytest.approx(on_reference.mean())


def test_model_performance_shows_realised_beside_reference_metrics(client, reported, pipeline):
    use_case, readings = reported
    labelled = readings.iloc[:LABELLED]

    metrics = get_report(client, use_case.name, "model_performance", reference="testing")["metrics"]

    realised = pipeline.predict(labelled[FEATURES])
    assert metrics["current"]["rows"] == LABELLED
    assert metrics["current"]["mae"] == pytest.approx(
        mean_absolute_error(labelled[TARGET], realised)
    )
    assert metrics["current"]["r2"] == pytest.approx(r2_score(labelled[TARGET], realised))
    assert set(metrics["current"]) >= {"mae", "rmse", "r2", "mape_percent"}
    on_testing = pipeline.predict(DEMO.testing[FEATURES])
    expected = mean_absolute_error(DEMO.testing[TARGET], on_testing)
    assert metrics["reference"]["mae"] == pytest.approx(expected)
    assert metrics["change"]["mae"] == pytest.approx(metrics["current"]["mae"] - expected)


@pytest.mark.parametrize(
    "kind",
    ["data_quality", "data_drift", "target_drift", "prediction_drift", "model_performance"],
)
def test_html_reports_are_self_contained_pages(client, reported, kind):
    use_case, _ = reported

    response = client.get(
        f"/monitoring_api/use_cases/{use_case.name}/reports/{kind}", params={"format": "html"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert page.rstrip().endswith("</html>")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", page)


def test_a_time_window_reports_exactly_the_rows_inside_it(client, reported):
    use_case, readings = reported
    start, end = readings["timestamp"].iloc[50], readings["timestamp"].iloc[150]

    body = get_report(
        client, use_case.name, "data_drift", start=start.isoformat(), end=end.isoformat()
    )

    assert body["current"]["rows"] == 100
    assert body["current"]["window"] == {"start": start.isoformat(), "end": end.isoformat()}
    assert body["current"]["start"] == start.isoformat()


def test_the_newest_rows_are_the_default_window(client, reported):
    use_case, readings = reported

    body = get_report(client, use_case.name, "data_drift", last=60)

    assert body["current"]["rows"] == 60
    assert body["current"]["end"] == readings["timestamp"].iloc[-1].isoformat()
    assert get_report(client, use_case.name, "data_drift")["current"]["window"] == {"last": 1000}
