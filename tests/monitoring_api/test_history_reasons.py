"""GET /history with no value says why in `reason` (issue #13: the history stayed empty
with no reason given): too few production rows in the window, too few training rows older
than the window, no point taken yet and when the next is due, the last scheduled point
failing, or every value outside the range asked for."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from gits_common import errors
from gits_ml.demo import PRODUCT_QUALITY
from monitoring_api.app import create_app
from tests.monitoring_api.conftest import (
    DEMO,
    HISTORY_WINDOW,
    monitoring_settings,
    nowhere,
    sampled,
)

MIN_ROWS = 30  # the tests' MONITORING_MIN_WINDOW_ROWS (monitoring_settings)


def history(client, name, **params):
    response = client.get(f"/monitoring_api/use_cases/{name}/history", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_too_few_production_rows_name_both_counts_and_the_setting(client, stage):
    use_case = stage.use_case("why")
    stage.produce(use_case, sampled(DEMO).iloc[:20])

    found = history(client, use_case.name)

    assert found["values"] == []
    assert found["reason"] == (
        f"too little data: 20 production rows in the window (the newest {HISTORY_WINDOW} at most, "
        f"MONITORING_WINDOW_ROWS); a history point needs at least {MIN_ROWS} "
        "(MONITORING_MIN_WINDOW_ROWS)"
    )
    # And it is what taking a point now answers
    refused = client.post(f"/monitoring_api/use_cases/{use_case.name}/history/run")
    assert refused.status_code == 422 and refused.json()["detail"] == found["reason"]


def test_training_rows_count_only_when_older_than_the_window(client, stage):
    # Given production rows stamped as the 21st to 80th training rows were: of the
    # 2,100 training rows only 20 are older than the window
    use_case = stage.use_case("whyref")
    time = PRODUCT_QUALITY.time_column
    times = DEMO.training[time].iloc[20:80].to_numpy()
    stage.produce(use_case, sampled(DEMO).iloc[:60].assign(**{time: times}))

    found = history(client, use_case.name)

    assert found["values"] == []
    assert found["reason"] == (
        "too little data: 20 training rows older than the window's first production row, "
        "of the training table's newest 10000 (MONITORING_REFERENCE_ROWS); a history "
        f"point needs at least {MIN_ROWS} (MONITORING_MIN_WINDOW_ROWS)"
    )


def test_enough_rows_without_a_schedule_say_how_to_take_a_point(client, stage):
    use_case = stage.use_case("whyoff")
    stage.produce(use_case, sampled(DEMO).iloc[:60])

    found = history(client, use_case.name)

    assert found["reason"] == (
        "no history point yet, and none is scheduled (MONITORING_INTERVAL_SECONDS is 0): "
        f"POST /monitoring_api/use_cases/{use_case.name}/history/run takes one"
    )


def test_enough_rows_on_a_schedule_say_when_the_next_point_is_due(apis, auth, stage):
    use_case = stage.use_case("whynext")
    stage.produce(use_case, sampled(DEMO).iloc[:60])
    app = create_app(monitoring_settings(apis, interval_seconds=3600))

    with TestClient(app, headers=auth) as client:
        found = history(client, use_case.name)

    prefix = "no history point yet: the next scheduled one is due at "
    assert found["reason"].startswith(prefix)
    assert found["reason"].endswith(" (MONITORING_INTERVAL_SECONDS)")
    due = datetime.fromisoformat(found["reason"][len(prefix) :].split(" ")[0])
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    assert in_an_hour - timedelta(minutes=1) < due <= in_an_hour


def test_a_failed_scheduled_point_is_the_reason(apis, auth, stage, monkeypatch):
    # Given rows enough, and scheduled points that fail on something passing
    use_case = stage.use_case("whyfail")
    stage.produce(use_case, sampled(DEMO).iloc[:60])
    app = create_app(monitoring_settings(apis, interval_seconds=0.1))

    async def failing(*_args, **_kwargs):
        raise errors.Unavailable("queue_manager is unreachable")

    monkeypatch.setattr(app.state.watch, "_point", failing)

    with TestClient(app, headers=auth) as client:
        deadline = time.monotonic() + 30
        while "failed" not in (reason := history(client, use_case.name)["reason"]):
            assert time.monotonic() < deadline, reason
            time.sleep(0.1)

    assert reason.startswith("no history point yet: the last scheduled one failed at ")
    assert reason.endswith(": queue_manager is unreachable")


def test_values_outside_the_range_give_when_the_newest_point_was(client, stage):
    use_case = stage.use_case("whyrange")
    stage.produce(use_case, sampled(DEMO).iloc[:60])
    point = client.post(f"/monitoring_api/use_cases/{use_case.name}/history/run").json()

    later = history(client, use_case.name, start=(datetime.now(UTC) + timedelta(1)).isoformat())
    everything = history(client, use_case.name)

    assert later["values"] == []
    taken = datetime.fromisoformat(point["time"])
    assert later["reason"] == (
        "no value matches start, end and metric; the newest history point was taken at "
        f"{taken.isoformat()}"
    )
    assert everything["values"] and everything["reason"] is None


def test_rows_that_cannot_be_counted_are_the_reason_not_a_failure(apis, auth):
    app = create_app(monitoring_settings({**apis, "ml_data_api": nowhere()}))

    with TestClient(app, headers=auth) as client:
        found = history(client, f"gone_{uuid.uuid4().hex[:8]}")

    assert found["values"] == []
    assert found["reason"].startswith("no history point yet, and its rows cannot be counted now")


def test_an_unknown_use_case_without_history_is_404(client):
    response = client.get("/monitoring_api/use_cases/no_such_case/history")
    assert response.status_code == 404
