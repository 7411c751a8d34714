"""retraining_api end to end: jobs answer at once and finish in the background, both
models are scored on the same held-out rows, promotion and rollback change what the
workers use through the real broker, and bad requests get a reason."""

from __future__ import annotations

import re
import time

import pytest

from gits_ml.demo import PRODUCT_QUALITY
from tests.amqp_helpers import publish, wait_until
from tests.retraining_api.conftest import DEMO, wait_for_job
from tests.workers.conftest import demo_messages

REGRESSION_METRICS = ["Model", "MAE", "MSE", "RMSE", "R2", "RMSLE", "MAPE"]  # the original's order
HELD_OUT_PRODUCTION = round(len(DEMO.ground_truth) * 0.2)


def start(retraining, **body) -> dict:
    response = retraining.post("/retraining_api/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def retrain(retraining, **body) -> dict:
    job = start(retraining, **body)
    done = wait_for_job(retraining, f"/retraining_api/jobs/{job['id']}")
    assert done["status"] == "finished", done["error"]
    return done


def stream(platform, pg, messages) -> set[str]:
    """Publish messages, wait for all their predictions; the model versions that made them."""
    ids = {m["message_id"] for m in messages}
    publish(platform.amqp_url, platform.routing_key, messages)

    def predicted() -> dict[str, str] | None:
        rows = {mid: version for mid, _, version in platform.production(pg) if mid in ids}
        return rows if len(rows) == len(ids) else None

    return set(wait_until(predicted, timeout=60).values())


def test_a_job_answers_at_once_and_finishes_with_both_result_blocks(loaded, retraining):
    name = loaded.use_case.name
    asked = time.monotonic()
    job = start(retraining, use_case=name, requested_by="alice")
    assert time.monotonic() - asked < 5  # answered before any training could finish
    assert (job["status"], job["service"], job["requested_by"]) == (
        "queued",
        loaded.service,
        "alice",
    )

    running: list[dict] = []

    def watch(state: dict) -> None:
        if state["status"] == "running":
            running.append(state)
            assert retraining.get("/health").status_code == 200  # the API answers meanwhile

    done = wait_for_job(retraining, f"/retraining_api/jobs/{job['id']}", seen=watch)

    assert done["status"] == "finished", done["error"]
    assert running and all(0 <= s["percent"] < 100 and s["stage"] for s in running)
    result = done["result"]
    assert list(result["retrained_model_results"]) == REGRESSION_METRICS
    assert list(result["previous_model_results"]) == REGRESSION_METRICS
    assert result["previous_model_results"]["Model"] == "Linear Regression"
    assert result["champion"] == f"{name}:1"
    assert result["holdout"] == {"testing": len(DEMO.testing), "production": HELD_OUT_PRODUCTION}
    # Labelled production rows join the training table; the held-out ones are kept out.
    assert (
        result["training_rows"] == len(DEMO.training) + len(DEMO.ground_truth) - HELD_OUT_PRODUCTION
    )
    assert result["metric"] == "R2" and result["decision"] is None
    listed = retraining.get("/retraining_api/jobs", params={"use_case": name}).json()
    assert [j["id"] for j in listed] == [job["id"]]


def test_promotion_switches_the_workers_and_rollback_restores_them(loaded, retraining, pg):
    name, service = loaded.use_case.name, loaded.service
    loaded.start_worker()
    assert stream(loaded, pg, demo_messages(10, prefix="a")) == {f"{name}:1"}
    job = retrain(retraining, use_case=name, models=["ridge"])

    promoted = retraining.post(
        f"/retraining_api/jobs/{job['id']}/promote", json={"requested_by": "alice"}
    )

    assert promoted.status_code == 201, promoted.text
    assert (promoted.json()["from_version"], promoted.json()["to_version"]) == (
        f"{name}:1",
        f"{name}:2",
    )
    time.sleep(1.0)  # the model-change event reaches the worker
    assert stream(loaded, pg, demo_messages(10, start=20, prefix="b")) == {f"{name}:2"}
    again = retraining.post(f"/retraining_api/jobs/{job['id']}/promote", json={})
    assert again.status_code == 409 and "already promoted" in again.json()["detail"]

    rolled = retraining.post(
        f"/retraining_api/services/{service}/rollback", json={"requested_by": "bob"}
    )

    assert rolled.status_code == 201, rolled.text
    assert rolled.json()["to_version"] == f"{name}:1"
    time.sleep(1.0)
    assert stream(loaded, pg, demo_messages(10, start=40, prefix="c")) == {f"{name}:1"}
    history = retraining.get("/retraining_api/promotions", params={"service": service}).json()
    assert [(h["action"], h["requested_by"]) for h in history] == [
        ("rollback", "bob"),
        ("promote", "alice"),
    ]
    assert history[1]["metrics"]["challenger"]["Model"] == "Ridge Regression"
    nothing_left = retraining.post(f"/retraining_api/services/{service}/rollback", json={})
    assert (
        nothing_left.status_code == 409 and "nothing to roll back" in nothing_left.json()["detail"]
    )


def test_auto_promote_refuses_a_worse_challenger(loaded, retraining):
    done = retrain(
        retraining, use_case=loaded.use_case.name, models=["dummy"], metric="MAE", auto_promote=True
    )

    decision = done["result"]["decision"]
    assert decision["promoted"] is False and "does not beat" in decision["reason"]
    with loaded.http("queue_manager") as qm:
        assert qm.get(f"/queue_manager/services/{loaded.service}").json()["resolved_version"] == 1
    assert (
        retraining.get("/retraining_api/promotions", params={"service": loaded.service}).json()
        == []
    )


def test_auto_promote_takes_a_challenger_that_beats_a_poor_champion(
    loaded, retraining, model_files
):
    loaded.upload(model_files[2])  # predicts about 100 too high
    loaded.bind(2)

    done = retrain(
        retraining, use_case=loaded.use_case.name, models=["lr"], metric="MAE", auto_promote=True
    )

    assert done["result"]["decision"]["promoted"] is True
    assert done["result"]["promotion"]["to_version"] == f"{loaded.use_case.name}:3"
    with loaded.http("queue_manager") as qm:
        bound = qm.get(f"/queue_manager/services/{loaded.service}").json()
    assert (bound["resolved_version"], bound["updated_by"]) == (3, "auto-promote")


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"use_case": "no_such_use_case"}, 404, "no_such_use_case"),
        ({"time_budget_seconds": 0}, 422, "time_budget_seconds"),
        ({"models": ["lr", "gpt"]}, 422, "unknown regression model ids ['gpt']"),
        ({"metric": "Accuracy"}, 422, "unknown regression metric 'Accuracy'"),
        ({"service": "no_such_service"}, 404, "no_such_service"),
    ],
)
def test_bad_retraining_requests_get_a_reason(loaded, retraining, body, status, reason):
    response = retraining.post(
        "/retraining_api/jobs", json={"use_case": loaded.use_case.name, **body}
    )

    assert response.status_code == status
    assert reason in response.text


def test_a_use_case_with_too_little_data_is_refused(platform, retraining):
    response = retraining.post("/retraining_api/jobs", json={"use_case": platform.use_case.name})

    assert response.status_code == 422
    assert "too little data: use case" in response.json()["detail"]
    assert (
        retraining.get("/retraining_api/jobs", params={"use_case": platform.use_case.name}).json()
        == []
    )


def test_promoting_or_rolling_back_what_does_not_exist_is_refused(platform, retraining):
    assert retraining.post("/retraining_api/jobs/999999/promote", json={}).status_code == 404
    rollback = retraining.post(f"/retraining_api/services/{platform.service}/rollback", json={})
    assert rollback.status_code == 409


def test_an_explainer_page_names_the_features_and_a_second_request_is_cached(loaded, retraining):
    name = loaded.use_case.name
    body = {"model_name": name, "model_version": 1, "data": "testing", "max_rows": 100}
    first = retraining.post("/retraining_api/explainers", json=body)
    assert first.status_code == 202, first.text

    done = wait_for_job(retraining, f"/retraining_api/explainers/{first.json()['id']}")

    assert done["status"] == "finished", done["error"]
    assert (done["result"]["rows_explained"], done["result"]["rows_available"]) == (
        100,
        len(DEMO.testing),
    )
    page = retraining.get(f"/retraining_api/explainers/{done['id']}/html")
    assert page.headers["content-type"].startswith("text/html")
    assert all(feature in page.text for feature in PRODUCT_QUALITY.feature_names)
    assert f"100 of {len(DEMO.testing)}" in page.text
    # Self-contained: plants are often offline, so no script or style comes from a CDN.
    assert not re.search(r'<(script|link)[^>]*(src|href)="https?://', page.text)
    assert "plotly.js v2" in page.text
    second = retraining.post("/retraining_api/explainers", json=body)
    assert (second.status_code, second.json()["id"]) == (200, done["id"])


def test_the_original_explainer_url_starts_the_job_then_serves_the_page(loaded, retraining):
    name = loaded.use_case.name
    params = {"model_name": name, "config_name": name, "evaluate_on": "testing"}

    started = retraining.get("/retraining_api/get_explainer_dashboard", params=params)

    assert started.status_code == 202 and started.json()["kind"] == "explainer"
    wait_for_job(retraining, f"/retraining_api/explainers/{started.json()['id']}")
    page = retraining.get("/retraining_api/get_explainer_dashboard", params=params)
    assert page.status_code == 200 and PRODUCT_QUALITY.feature_names[0] in page.text
    wrong = retraining.get(
        "/retraining_api/get_explainer_dashboard", params=params | {"config_name": "other"}
    )
    assert wrong.status_code == 422 and "belongs to use case" in wrong.text


def test_every_route_but_health_needs_the_token(retraining_url):
    import httpx

    assert httpx.get(f"{retraining_url}/retraining_api/jobs").status_code == 401
    assert httpx.get(f"{retraining_url}/health").status_code == 200


def test_a_registered_challenger_is_a_new_version_bound_nowhere_and_promotes_as_itself(
    loaded, retraining
):
    done = retrain(retraining, use_case=loaded.use_case.name, models=["dummy"], metric="MAE")
    job = done["id"]

    registered = retraining.post(f"/retraining_api/jobs/{job}/register", json={})
    again = retraining.post(f"/retraining_api/jobs/{job}/register", json={})
    with loaded.http("queue_manager") as qm:
        bound = qm.get(f"/queue_manager/services/{loaded.service}").json()
    promoted = retraining.post(f"/retraining_api/jobs/{job}/promote", json={})
    with loaded.http("queue_manager") as qm:
        versions = qm.get("/queue_manager/algorithms", params={"name": loaded.use_case.name}).json()

    assert registered.status_code == 201, registered.text
    # the service's algorithm by default, its next version, and no service moved
    assert (registered.json()["name"], registered.json()["version"]) == (loaded.use_case.name, 2)
    assert registered.json()["services"] == [] and bound["resolved_version"] == 1
    assert again.status_code == 409 and "already registered" in again.json()["detail"]
    # promoting it binds the version registered, without a second upload
    assert promoted.status_code == 201, promoted.text
    assert promoted.json()["to_version"] == f"{loaded.use_case.name}:2"
    assert len(versions) == 2
