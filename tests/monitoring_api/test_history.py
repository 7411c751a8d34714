"""The metric history and its alerts: drift rising with the demo's drift knob, realised
performance as scikit-learn computes it, one alert per crossing within the cool-down,
delivered to the use case's webhook."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from gits_common.clients import MlDataClient
from gits_ml.demo import FEATURES, TARGET
from monitoring_api.app import create_app
from tests.monitoring_api.conftest import (
    CHAMBER_3,
    DEMO,
    DRIFT_FROM_ROW,
    DRIFTED,
    hermetic,
    monitoring_settings,
    nowhere,
    sampled,
)

# Each step adds these sampled rows, then takes a point over the newest 500 (the app's
# window, enough for drift distances): no drift, half drifted, all drifted, all drifted
# again.
STEPS = [(0, DRIFT_FROM_ROW), (500, 750), (750, 1000), (1000, 1250)]
LIMITS = {"drift_share": None, "feature_drift_score": 0.6, "performance_drop": 0.12}


def run_point(client, name):
    response = client.post(f"/monitoring_api/use_cases/{name}/history/run")
    assert response.status_code == 200, response.text
    return response.json()


def value(point, metric, feature=None):
    found = [
        v["value"] for v in point["values"] if (v["metric"], v["feature"]) == (metric, feature)
    ]
    assert len(found) == 1, (metric, feature)
    return found[0]


def stream(client, stage, data, webhook_url):
    """A use case fed step by step with labelled readings of `data`; its points."""
    use_case = stage.use_case("hist")
    limits = {**LIMITS, "webhook_url": webhook_url}
    put = client.put(f"/monitoring_api/use_cases/{use_case.name}/thresholds", json=limits)
    assert put.status_code == 200, put.text
    readings, points = sampled(data), []
    for first, last in STEPS:
        stage.produce(use_case, readings.iloc[first:last])
        stage.label(use_case, readings.iloc[first:last])
        points.append(run_point(client, use_case.name))
    return use_case, points


def test_drift_raises_each_alert_once_and_delivers_it(client, stage, webhook):
    # Given a stream whose chamber 3 runs 40 degrees hotter from row 500 on
    use_case, points = stream(client, stage, DRIFTED, webhook.url)

    # Then chamber 3's drift scores rise point after point, and the drift share with them
    for sensor in CHAMBER_3:
        scores = [value(p, "drift_score", sensor) for p in points[:3]]
        assert scores == sorted(scores) and scores[2] > 0.6 > scores[0], (sensor, scores)
    assert value(points[2], "drift_share") > value(points[0], "drift_share")

    # And nothing alerted before the drift; then each chamber-3 sensor, and the MAE that
    # drift made worse, alerted exactly once: later points fell in the cool-down
    assert points[0]["alerts"] == []
    alerts = [a for p in points for a in p["alerts"]]
    raised = [(a["metric"], a["feature"]) for a in alerts]
    assert sorted(raised, key=str) == sorted(
        [("drift_score", s) for s in CHAMBER_3] + [("mae", None)], key=str
    )
    mae_alert = next(a for a in alerts if a["metric"] == "mae")
    mae_point = next(p for p in points if mae_alert in p["alerts"])
    assert mae_alert["value"] == pytest.approx(value(mae_point, "mae"))
    assert mae_alert["threshold"] == pytest.approx(value(mae_point, "reference_mae") * 1.12)

    # And each reached the webhook, and says so
    assert sorted((a["metric"], a["feature"] or "") for a in webhook.received) == sorted(
        (m, f or "") for m, f in raised
    )
    stored = client.get(f"/monitoring_api/use_cases/{use_case.name}/alerts").json()
    assert len(stored) == 4
    assert {(a["delivery"], a["delivery_detail"]) for a in stored} == {("delivered", "HTTP 200")}


def test_without_the_drift_knob_nothing_alerts(client, stage, webhook):
    use_case, points = stream(client, stage, DEMO, webhook.url)

    assert [p["alerts"] for p in points] == [[], [], [], []]
    assert max(value(p, "drift_score", s) for p in points for s in CHAMBER_3) < 0.3
    assert webhook.received == []
    assert client.get(f"/monitoring_api/use_cases/{use_case.name}/alerts").json() == []


def test_realised_performance_is_what_sklearn_computes_on_the_labelled_rows(
    client, stage, pipeline
):
    use_case = stage.use_case("perf")
    readings = sampled(DEMO).iloc[:300]
    stage.produce(use_case, readings)
    scored = readings.iloc[::3]  # the ground truth of a third of the rows has arrived
    stage.label(use_case, scored)

    point = run_point(client, use_case.name)

    predicted = pipeline.predict(scored[FEATURES])
    assert point["rows"] == 300 and point["labelled_rows"] == 100
    assert value(point, "mae") == pytest.approx(mean_absolute_error(scored[TARGET], predicted))
    rmse = mean_squared_error(scored[TARGET], predicted) ** 0.5
    assert value(point, "rmse") == pytest.approx(rmse)
    assert value(point, "r2") == pytest.approx(r2_score(scored[TARGET], predicted))
    on_training = pipeline.predict(DEMO.training[FEATURES])
    expected = mean_absolute_error(DEMO.training[TARGET], on_training)
    assert value(point, "reference_mae") == pytest.approx(expected)
    series = client.get(
        f"/monitoring_api/use_cases/{use_case.name}/history", params={"metric": "mae"}
    ).json()
    assert [v["value"] for v in series["values"]] == [value(point, "mae")]


def test_too_few_labels_record_drift_but_no_performance(client, stage):
    use_case = stage.use_case("few")
    readings = sampled(DEMO).iloc[:100]
    stage.produce(use_case, readings)
    stage.label(use_case, readings.iloc[:9])  # MONITORING_MIN_LABELLED is 10

    point = run_point(client, use_case.name)

    # 100 rows are too few for drift distances: each feature records its p-value; the
    # performance is estimated (DLE), not realised
    metrics = {v["metric"] for v in point["values"]}
    assert metrics == {"drift_share", "drift_p_value", "estimated_mae", "estimated_rmse"}
    assert point["labelled_rows"] == 9


def test_the_default_thresholds_alert_when_half_the_features_drift(client, stage):
    use_case = stage.use_case("share")
    readings = sampled(DEMO).iloc[:100]
    hotter = readings.assign(**{f: readings[f] * 1.2 for f in FEATURES})  # every sensor off
    stage.produce(use_case, hotter)

    point = run_point(client, use_case.name)

    assert value(point, "drift_share") == 1.0
    assert [(a["metric"], a["value"], a["threshold"], a["delivery"]) for a in point["alerts"]] == [
        ("drift_share", 1.0, 0.5, "none")
    ]


def test_after_the_cool_down_the_same_crossing_alerts_again(apis, auth, stage):
    use_case = stage.use_case("again")
    readings = sampled(DEMO).iloc[:100]
    stage.produce(use_case, readings.assign(**{f: readings[f] * 1.2 for f in FEATURES}))
    app = create_app(monitoring_settings(apis, alert_cooldown_seconds=0))

    with TestClient(app, headers=auth) as client:
        points = [run_point(client, use_case.name) for _ in range(2)]
        stored = client.get(f"/monitoring_api/use_cases/{use_case.name}/alerts").json()

    assert [len(p["alerts"]) for p in points] == [1, 1]
    assert [a["metric"] for a in stored] == ["drift_share", "drift_share"]


def test_configured_default_thresholds_apply_to_use_cases_without_their_own(apis, auth, stage):
    # 500 rows: enough for drift distances, which feature_drift_score is in
    use_case = stage.use_case("defaults")
    readings = sampled(DEMO).iloc[:500]
    stage.produce(use_case, readings.assign(T_data_1_1=readings["T_data_1_1"] + 30))
    app = create_app(
        monitoring_settings(apis, default_drift_share=None, default_feature_drift_score=0.3)
    )

    with TestClient(app, headers=auth) as client:
        limits = client.get(f"/monitoring_api/use_cases/{use_case.name}/thresholds").json()
        point = run_point(client, use_case.name)

    assert limits["feature_drift_score"] == 0.3
    assert [(a["metric"], a["feature"]) for a in point["alerts"]] == [("drift_score", "T_data_1_1")]


def test_a_failing_webhook_is_recorded_on_the_alert_and_the_point_still_stored(apis, auth, stage):
    use_case = stage.use_case("hook")
    limits = {"drift_share": 0.0, "webhook_url": nowhere()}
    stage.produce(use_case, sampled(DEMO).iloc[:100])
    app = hermetic(create_app(monitoring_settings(apis, webhook_timeout_seconds=0.5)))

    with TestClient(app, headers=auth) as client:
        put = client.put(f"/monitoring_api/use_cases/{use_case.name}/thresholds", json=limits)
        assert put.status_code == 200, put.text
        point = run_point(client, use_case.name)
        stored = client.get(f"/monitoring_api/use_cases/{use_case.name}/alerts").json()
        history = client.get(f"/monitoring_api/use_cases/{use_case.name}/history").json()

    (alert,) = point["alerts"]
    assert alert["delivery"] == "failed"
    assert alert["delivery_detail"] == "not delivered"  # which failure it was, only in the log
    assert stored == [alert]
    # the drift share, each feature's p-value, and the estimated MAE and RMSE (DLE)
    assert len(history["values"]) == 1 + len(FEATURES) + 2


def test_thresholds_default_until_set_and_are_validated(client, stage):
    name = stage.use_case("limits", upload=False).name
    url = f"/monitoring_api/use_cases/{name}/thresholds"
    defaults = {
        "drift_share": 0.5,
        "feature_drift_score": None,
        "performance_drop": None,
        "anomaly_rate": 0.1,
        "webhook_url": None,
    }
    assert client.get(url).json() == defaults

    chosen = {
        "drift_share": 0.3,
        "feature_drift_score": 0.2,
        "webhook_url": "http://hooks.example/x",
    }
    assert client.put(url, json=chosen).status_code == 200

    assert client.get(url).json() == {**defaults, **chosen}
    bad = client.put(url, json={"drift_share": 1.5, "performance_drop": -1})
    assert bad.status_code == 422
    assert "drift_share" in bad.json()["detail"] and "performance_drop" in bad.json()["detail"]
    assert client.get("/monitoring_api/use_cases/no_such_case/thresholds").status_code == 404


def test_history_points_are_taken_on_a_schedule_only_for_new_data(apis, auth, stage, monkeypatch):
    # The passes see this test's use cases only: the suite's database holds every earlier
    # test's, and a pass over all of them can take longer than the test waits.
    every, names = MlDataClient.use_cases, set()

    async def ours(self):
        return [u for u in await every(self) if u.name in names]

    monkeypatch.setattr(MlDataClient, "use_cases", ours)
    # "sched_a..." sorts before "sched_b...", so a pass that reaches b has passed a
    first = stage.use_case("sched_a")
    names.add(first.name)
    stage.produce(first, sampled(DEMO).iloc[:60])
    app = create_app(monitoring_settings(apis, interval_seconds=0.1))

    with TestClient(app, headers=auth) as client:
        assert len(wait_for_points(client, first.name)) == 1
        second = stage.use_case("sched_b")
        names.add(second.name)
        stage.produce(second, sampled(DEMO).iloc[:60])
        assert len(wait_for_points(client, second.name)) == 1

        # The passes since then found the first use case's data unchanged
        assert len(wait_for_points(client, first.name)) == 1


def wait_for_points(client, name):
    url = f"/monitoring_api/use_cases/{name}/history"
    deadline = time.monotonic() + 60
    while not (values := client.get(url, params={"metric": "drift_share"}).json()["values"]):
        assert time.monotonic() < deadline, f"no scheduled point of {name} within a minute"
        time.sleep(0.1)
    return values


def test_a_history_point_on_too_few_rows_is_refused_rather_than_alerting(apis, auth, stage):
    # Given 100 production rows, far off the reference, and a history that wants 200
    use_case = stage.use_case("few")
    readings = sampled(DEMO).iloc[:100]
    stage.produce(use_case, readings.assign(**{f: readings[f] * 1.2 for f in FEATURES}))
    app = create_app(monitoring_settings(apis, min_window_rows=200))

    with TestClient(app, headers=auth) as client:
        response = client.post(f"/monitoring_api/use_cases/{use_case.name}/history/run")
        alerts = client.get(f"/monitoring_api/use_cases/{use_case.name}/alerts").json()

    # Then no point is taken and nothing alerts: 100 rows are too few to judge drift
    assert response.status_code == 422
    assert "needs at least 200 (MONITORING_MIN_WINDOW_ROWS)" in response.json()["detail"]
    assert alerts == []
