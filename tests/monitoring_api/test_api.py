"""What a user meets around the reports: reasons instead of stack traces when the data
cannot make a report, the cache, the token, and the services monitoring_api needs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gits_ml.demo import FEATURES
from monitoring_api.app import create_app
from tests.monitoring_api.conftest import DEMO, monitoring_settings, nowhere, sampled


@pytest.fixture(scope="module")
def served(stage):
    """A use case with 100 production rows, 20 of them labelled."""
    use_case = stage.use_case("api")
    readings = sampled(DEMO).iloc[:100]
    stage.produce(use_case, readings)
    stage.label(use_case, readings.iloc[:20])
    return use_case


def report_url(name, kind="data_drift"):
    return f"/monitoring_api/use_cases/{name}/reports/{kind}"


def test_too_little_data_is_refused_with_the_reason(client, stage):
    use_case = stage.use_case("small", upload=False)
    stage.produce(use_case, sampled(DEMO).iloc[:10])

    response = client.get(report_url(use_case.name))

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "too little data: 10 production row(s) in the window, a report needs at least 30 "
        "(MONITORING_MIN_ROWS)"
    )


@pytest.mark.parametrize("kind", ["target_drift", "model_performance"])
def test_reports_on_labels_need_labelled_rows(client, stage, kind):
    use_case = stage.use_case("unlabelled", upload=False)
    stage.produce(use_case, sampled(DEMO).iloc[:50])

    response = client.get(report_url(use_case.name, kind))

    assert response.status_code == 422
    assert response.json()["detail"].startswith("no labelled rows: none of the 50 production")


def test_unknown_use_case_kind_or_window_answer_4xx_with_reasons(client, served):
    unknown_case = client.get(report_url("no_such_case"))
    unknown_kind = client.get(report_url(served.name, "data_vibes"))
    both_windows = client.get(
        report_url(served.name), params={"last": 10, "start": "2024-01-01T00:00:00Z"}
    )

    assert unknown_case.status_code == 404
    assert "unknown use case 'no_such_case'" in unknown_case.json()["detail"]
    assert unknown_kind.status_code == 422
    assert "data_drift" in unknown_kind.json()["detail"]
    assert both_windows.status_code == 422
    assert "not both" in both_windows.json()["detail"]


def test_an_identical_request_is_served_from_the_cache(client, served):
    first = client.get(report_url(served.name), params={"last": 80})
    again = client.get(report_url(served.name), params={"last": 80})
    other_window = client.get(report_url(served.name), params={"last": 70})
    as_html = client.get(report_url(served.name), params={"last": 80, "format": "html"})

    assert first.headers["X-Cache"] == "miss"
    assert again.headers["X-Cache"] == "hit"
    assert again.content == first.content
    assert other_window.headers["X-Cache"] == "miss"
    assert as_html.headers["X-Cache"] == "miss"


def test_new_rows_in_the_same_window_are_not_served_from_the_cache(client, stage):
    use_case = stage.use_case("fresh")
    readings = sampled(DEMO)
    stage.produce(use_case, readings.iloc[:60])
    assert client.get(report_url(use_case.name)).headers["X-Cache"] == "miss"

    stage.produce(use_case, readings.iloc[60:70])
    response = client.get(report_url(use_case.name))

    assert response.headers["X-Cache"] == "miss"
    assert response.json()["current"]["rows"] == 70


def test_arriving_labels_change_the_report(client, stage):
    use_case = stage.use_case("labels")
    readings = sampled(DEMO).iloc[:60]
    stage.produce(use_case, readings)
    stage.label(use_case, readings.iloc[:5])
    before = client.get(report_url(use_case.name, "target_drift"))

    stage.label(use_case, readings.iloc[5:30])
    after = client.get(report_url(use_case.name, "target_drift"))

    assert before.json()["metrics"]["current"]["rows"] == 5
    assert after.headers["X-Cache"] == "miss"
    assert after.json()["metrics"]["current"]["rows"] == 30


def test_every_route_needs_the_token_but_health(app, served):
    paths = [
        ("GET", report_url(served.name)),
        ("POST", f"/monitoring_api/use_cases/{served.name}/history/run"),
        ("GET", f"/monitoring_api/use_cases/{served.name}/history"),
        ("GET", f"/monitoring_api/use_cases/{served.name}/thresholds"),
        ("PUT", f"/monitoring_api/use_cases/{served.name}/thresholds"),
        ("GET", f"/monitoring_api/use_cases/{served.name}/alerts"),
    ]
    with TestClient(app) as anonymous:
        for method, path in paths:
            response = anonymous.request(method, path, json={})
            assert response.status_code == 401, path
            wrong = anonymous.request(method, path, headers={"Authorization": "Bearer guess"})
            assert wrong.status_code == 401, path
        health = anonymous.get("/health")

    assert health.status_code == 200
    assert health.json()["status"] == "ok"


def test_ml_data_api_out_of_reach_answers_503(apis, auth, served):
    app = create_app(monitoring_settings(apis, ml_data_api_url=nowhere()))

    with TestClient(app, headers=auth) as client:
        report = client.get(report_url(served.name))
        point = client.post(f"/monitoring_api/use_cases/{served.name}/history/run")

    for response in (report, point):
        assert response.status_code == 503
        assert "ml_data_api unreachable" in response.json()["detail"]
        assert response.headers["Retry-After"]


def test_without_queue_manager_prediction_drift_falls_back_and_performance_waits(
    apis, auth, served
):
    app = create_app(monitoring_settings(apis, queue_manager_url=nowhere()))

    with TestClient(app, headers=auth) as client:
        drift = client.get(report_url(served.name, "prediction_drift"))
        again = client.get(report_url(served.name, "prediction_drift"))
        performance = client.get(report_url(served.name, "model_performance"))

    assert drift.status_code == 200
    metrics = drift.json()["metrics"]
    assert metrics["compared_with"] == "the reference target (the model could not be had)"
    assert metrics["model"]["reason"].startswith("queue_manager unavailable")
    assert again.headers["X-Cache"] == "miss"  # the model may be back next time
    assert performance.status_code == 503
    assert "queue_manager unreachable" in performance.json()["detail"]


def test_a_model_only_a_row_names_is_never_loaded_and_the_fallback_says_why(client, stage):
    # Given production rows naming a model no service of the use case is bound to
    use_case = stage.use_case("nomodel", upload=False)
    readings = sampled(DEMO).iloc[:60]
    stage.produce(use_case, readings, model_version="retired_model:3")
    stage.label(use_case, readings)

    drift = client.get(report_url(use_case.name, "prediction_drift")).json()["metrics"]
    performance = client.get(report_url(use_case.name, "model_performance")).json()["metrics"]

    # Then monitoring loads no model (it finds models through services, issue #11)
    assert drift["model"]["name"] is None
    assert f"no service of use case {use_case.name!r}" in drift["model"]["reason"]
    assert "reference target" in drift["compared_with"]
    assert performance["reference"] is None
    assert performance["current"]["rows"] == 60
    assert set(performance["current"]) >= {"mae", "rmse", "r2"}


def test_reference_rows_come_from_before_the_window(client, stage):
    # Labels copy production rows into the training table; the window must not be
    # compared with its own rows.
    use_case = stage.use_case("own")
    readings = sampled(DEMO).iloc[:60]
    stage.produce(use_case, readings)
    stage.label(use_case, readings)

    body = client.get(report_url(use_case.name)).json()

    assert body["reference"]["rows"] == len(DEMO.training)
    assert len(body["metrics"]["features"]) == len(FEATURES)
