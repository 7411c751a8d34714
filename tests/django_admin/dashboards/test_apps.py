"""What the Dash apps show, called as Dash calls them: real data drawn within bounds, and
a sentence naming the API that is down instead of a broken graph."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from dash import no_update
from django.test import override_settings

from django_admin.apis import API_NAMES, reset_clients
from django_admin.dashboards import data
from django_admin.dashboards.dash_apps import main, monitoring, realtime
from django_admin.dashboards.dash_apps.common import NO_VALUE, SEE_NOTICE
from gits_common import errors
from gits_ml.demo import PRODUCT_QUALITY
from gits_ml.demos import SENSOR_ANOMALY
from tests.conftest import free_port


@pytest.fixture
def apis_down() -> Iterator[None]:
    """Every API and RabbitMQ at addresses where nothing listens."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    with override_settings(
        GITS_API_URLS=dict.fromkeys(API_NAMES, nowhere),
        GITS_AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/",
    ):
        reset_clients()
        yield
    reset_clients()


def annotation(figure) -> str:
    """The text a figure shows in place of data."""
    return " ".join(a.text for a in figure.layout.annotations)


@pytest.mark.usefixtures("apis_down")
def test_main_dashboard_names_the_api_that_is_down() -> None:
    *figures, finished, failed, messages = main.show_jobs(0, "service_a")
    assert "queue_manager" in messages[0] and "cannot be shown right now" in messages[0]
    assert all(annotation(f) == SEE_NOTICE for f in figures)
    assert finished == failed == NO_VALUE
    *_, data_messages = main.show_data(0, "service_a", {"service_a": "pumps"})
    assert "ml_data_api" in data_messages[0]
    count, amqp_messages = main.show_dead_letters(0, "service_a")
    assert count == NO_VALUE and "RabbitMQ" in amqp_messages[0]


@pytest.mark.usefixtures("apis_down")
def test_monitoring_and_realtime_name_the_api_that_is_down() -> None:
    options, _value, messages = monitoring.list_use_cases(0, None)
    assert options == [] and "ml_data_api" in messages[0]
    *_, history_messages = monitoring.show_history(0, "pumps", "1 hour")
    assert "monitoring_api" in history_messages[0]
    *_, services_messages = realtime.list_services(0, None, None)
    assert "queue_manager" in services_messages[0]
    figure, _summary, stream_messages = realtime.show_stream(
        0, ["service_a"], "5 minutes", {"service_a": "pumps"}
    )
    assert "ml_data_api" in stream_messages[0]
    assert "No prediction" in annotation(figure)


def test_the_live_graph_draws_long_streams_within_its_point_budget() -> None:
    # Given two hours of predictions, one a second
    times = pd.date_range(datetime.now(UTC) - timedelta(hours=2), periods=7200, freq="s")
    rows = pd.DataFrame(
        {"time": times, "prediction": np.sin(np.arange(7200) / 300), "model_version": "m:1"}
    )
    # When drawn
    figure = realtime.live_figure({"service_a": rows}, "2 hours", tasks={})
    # Then the line has the budgeted number of points, ending at the newest prediction
    (line,) = figure.data
    assert len(line.x) == realtime.POINTS_PER_LINE
    assert pd.Timestamp(line.x[-1]) == times[-1]
    assert "7,200 predictions, 1,000 drawn" in realtime.summary({"service_a": rows})


def test_predictions_are_drawn_with_the_ground_truth_that_arrived() -> None:
    times = pd.date_range("2025-03-01", periods=10, freq="s", tz="UTC")
    rows = pd.DataFrame(
        {
            "time": times,
            "prediction": np.linspace(300, 310, 10),
            "target": [301.0, None, None, None, None, 305.5, None, None, None, None],
            "model_version": ["pq:1"] * 5 + ["pq:2"] * 5,
        }
    )
    figure = main.predictions_figure(rows)
    names = {trace.name: len(trace.x) for trace in figure.data}
    assert names == {
        "prediction (pq:1)": 5,
        "prediction (pq:2)": 5,
        "ground truth (2 arrived)": 2,
    }


def test_an_empty_history_shows_monitoring_api_s_reason(monkeypatch) -> None:
    # Given monitoring_api says why a use case has no history point
    reason = (
        "too little data: 60 production rows in the window (the newest 500 at most, "
        "MONITORING_WINDOW_ROWS); a history point needs at least 500 (MONITORING_MIN_WINDOW_ROWS)"
    )
    empty = pd.DataFrame(columns=["time", "metric", "feature", "value"])
    monkeypatch.setattr(data, "history", lambda name, window: data.History(empty, reason))
    monkeypatch.setattr(data, "drift_share_threshold", lambda name: 0.5)
    monkeypatch.setattr(data, "alerts", lambda name, window: [])

    # When the monitoring dashboard draws it
    *figures, _alerts, messages = monitoring.show_history(0, "pumps", "1 hour")

    # Then every graph says that reason where its lines would be
    assert messages == []
    for figure in figures:
        assert f"No history point to show: {reason}." == annotation(figure).replace("<br>", " ")


def test_a_history_with_drift_but_no_labels_says_it_needs_ground_truth() -> None:
    times = pd.to_datetime(["2025-03-01T00:00:00Z"] * 2)
    values = pd.DataFrame(
        {
            "time": times,
            "metric": ["drift_share", "drift_score"],
            "feature": [None, "temp"],
            "value": [0.0, 0.1],
        }
    )
    figure = monitoring.performance_figure(data.History(values, None))
    assert annotation(figure) == monitoring.NO_PERFORMANCE


# --- the main dashboard: the chosen service's own work, honestly drawn ---

T0 = pd.Timestamp("2025-03-01T12:00:00Z")


def services(*pairs: tuple[str, str]) -> list[data.Service]:
    """Services from (name, use case)."""
    return [data.Service(name, case, f"rk.{name}", "m:1") for name, case in pairs]


def test_the_main_dashboard_draws_only_the_chosen_services_predictions(monkeypatch) -> None:
    # Given two services predicting for one use case, their rows interleaved
    production = pd.DataFrame(
        {
            "time": pd.date_range(T0, periods=6, freq="s"),
            "message_id": [f"m{i}" for i in range(6)],
            "prediction": np.arange(6.0),
            "target": [None] * 6,
            "prediction_score": np.nan,
            "model_version": "pq:1",
        }
    )
    monkeypatch.setattr(data, "use_case", lambda name: PRODUCT_QUALITY)
    monkeypatch.setattr(data, "production_rows", lambda definition, last: production)
    monkeypatch.setattr(data, "predicted_ids", lambda service, limit: {"m0", "m2", "m4"})
    monkeypatch.setattr(data, "row_counts", lambda name: {"production": 6})
    # When line_a is shown
    shared = {"line_a": "product_quality", "line_b": "product_quality"}
    graphs, counts, production_kpi, about, messages = main.show_data(0, "line_a", shared)
    # Then its line holds its three predictions, not the use case's six
    (cell,) = graphs
    line = next(t for t in cell.children.figure.data if t.name.startswith("prediction"))
    assert list(line.y) == [0.0, 2.0, 4.0]
    assert "line_a's own" in about and messages == []
    # And what is the whole use case's says so
    assert "use case product_quality" in counts.layout.title.text
    assert production_kpi == "6"


def test_the_default_service_is_one_with_data_and_the_url_wins(monkeypatch) -> None:
    # Given an idle service first by name, and one with recent finished jobs
    found = services(("a_idle", "product_quality"), ("b_busy", "product_quality"))
    monkeypatch.setattr(data, "services", lambda: found)
    monkeypatch.setattr(data, "active_services", lambda: ["b_busy"])
    # When the page opens without a choice, the busy one is shown
    assert main.list_services(0, None, {})[1] == "b_busy"
    # And a choice from the URL is shown, and the user's left as it is
    assert main.list_services(0, None, {"service": "a_idle"})[1] == "a_idle"
    assert main.list_services(0, "a_idle", {"service": "b_busy"})[1] is no_update
    # And when queue_manager cannot say which has data, the first is shown, and why
    monkeypatch.setattr(data, "active_services", unavailable)
    _, chosen, _, messages = main.list_services(0, None, {})
    assert chosen == "a_idle" and "Which services have data" in messages[0]


def unavailable() -> list[str]:
    raise errors.Unavailable("queue_manager unreachable")


def test_monitoring_and_realtime_default_to_what_has_data(monkeypatch) -> None:
    found = services(("a_idle", "alpha"), ("b_busy", "beta"), ("c_busy", "gamma"))
    monkeypatch.setattr(data, "services", lambda: found)
    monkeypatch.setattr(data, "active_services", lambda: ["c_busy", "b_busy"])
    monkeypatch.setattr(data, "use_case_names", lambda: ["alpha", "beta", "gamma"])
    monkeypatch.setattr(data, "use_case", lambda name: PRODUCT_QUALITY)
    assert monitoring.list_use_cases(0, None, {})[1] == "gamma"
    assert monitoring.list_use_cases(0, None, {"use_case": "alpha"})[1] == "alpha"
    chosen = realtime.list_services(0, None, None, {})[1]
    assert chosen[:2] == ["c_busy", "b_busy"]
    assert realtime.list_services(0, None, None, {"service": ["a_idle"]})[1] == ["a_idle"]


def test_throughput_has_units_utc_and_says_how_the_current_bucket_is_drawn() -> None:
    # Given a steady 2 jobs a second, and now 7 s into a 10 s bucket
    ends = [T0 + pd.Timedelta(seconds=s / 2) for s in range(2 * 37)]
    jobs = pd.DataFrame({"start": ends, "end": ends, "status": "finished", "elapsed": 0.1})
    now = (T0 + pd.Timedelta(seconds=37)).to_pydatetime()
    rates = data.throughput(jobs, bucket="10s", start=T0.to_pydatetime(), end=now)
    # When drawn
    figure = main.throughput_figure(rates, "10s", now=now)
    # Then its axes say messages/s and UTC, and the note says the last bucket is partial
    assert figure.layout.yaxis.title.text == "messages/s"
    assert figure.layout.xaxis.title.text == "time (UTC)"
    assert "UTC" in str(figure.data[0].hovertemplate)
    assert "rated over its 7 s so far" in annotation(figure)
    # And the line ends at the rate it ran at, no dip
    assert list(figure.data[0].y) == pytest.approx([2.0, 2.0, 2.0, 2.0])
    early = (T0 + pd.Timedelta(seconds=33)).to_pydatetime()
    assert "left out" in str(main.current_bucket_note("10s", early))


def test_processing_time_breaks_over_buckets_without_a_job() -> None:
    # Given jobs ending in the first two 10 s buckets and the fifth, none between
    timing = pd.DataFrame(
        {
            "time": [T0, T0 + pd.Timedelta(seconds=10), T0 + pd.Timedelta(seconds=40)],
            "mean": [0.1, 0.2, 0.3],
            "max": [0.2, 0.4, 0.6],
        }
    )
    figure = main.processing_figure(timing, "10s")
    # Then each line breaks once, between the second and the fifth bucket, in seconds
    for line in figure.data:
        assert [v is None or np.isnan(v) for v in line.y] == [False, False, True, False]
        assert line.connectgaps is False
    assert figure.layout.yaxis.title.text == "seconds"


def test_predictions_break_at_a_pause_and_name_their_unit() -> None:
    # Given predictions a second apart with five minutes missing
    seconds = [*range(30), *range(330, 360)]
    rows = pd.DataFrame(
        {
            "time": [T0 + pd.Timedelta(seconds=s) for s in seconds],
            "prediction": np.linspace(300, 310, 60),
            "target": [None] * 60,
            "model_version": "pq:1",
        }
    )
    figure = main.predictions_figure(rows, value_title=main.target_title(PRODUCT_QUALITY))
    line = figure.data[0]
    # Then the line has one hole, inside the pause, and the axes name unit and zone
    holes = [i for i, v in enumerate(line.y) if v is None or np.isnan(v)]
    assert holes == [30]
    assert figure.layout.yaxis.title.text == "quality (unit not declared)"
    assert figure.layout.xaxis.title.text == "time (UTC)"


def test_use_cases_in_different_units_get_their_own_axes() -> None:
    # Given two services of one regression use case and one anomaly service
    times = pd.date_range(T0, periods=50, freq="s")
    rows = pd.DataFrame(
        {
            "time": times,
            "prediction": np.linspace(0, 1, 50),
            "prediction_score": np.linspace(0, 1, 50),
            "model_version": "m:1",
        }
    )
    streams = {"line_a": rows, "line_b": rows, "pump": rows}
    definitions = {"line_a": PRODUCT_QUALITY, "line_b": PRODUCT_QUALITY, "pump": SENSOR_ANOMALY}
    tasks = {s: d.task for s, d in definitions.items()}
    # When drawn on the live graph
    figure = realtime.live_figure(streams, "5 minutes", tasks=tasks, definitions=definitions)
    # Then the use case's two services share an axis, and the anomaly score has its own
    axes = {t.name: t.yaxis for t in figure.data}
    assert axes["line_a"] == axes["line_b"] != axes["pump"]
    titles = [figure.layout[a].title.text for a in ("yaxis", "yaxis2")]
    assert titles == [
        "product_quality: quality (unit not declared)",
        "sensor_anomaly: anomaly score (the model's own scale)",
    ]
    assert figure.layout.xaxis2.title.text == "time (UTC)"


def test_performance_metrics_in_different_units_get_their_own_axes() -> None:
    # Given errors in the target's unit, R² and a share, with their reference values
    times = pd.to_datetime(["2025-03-01T00:00:00Z", "2025-03-01T00:01:00Z"])
    metrics = ["mae", "reference_mae", "rmse", "r2", "estimated_mae"]
    values = pd.DataFrame(
        {
            "time": [t for _ in metrics for t in times],
            "metric": [m for m in metrics for _ in times],
            "feature": None,
            "value": 1.0,
        }
    )
    figure = monitoring.performance_figure(data.History(values, None))
    axes = {t.name: t.yaxis for t in figure.data}
    # Then the errors share one axis, R² has another
    assert axes["mae"] == axes["reference_mae"] == axes["rmse"] == axes["estimated_mae"]
    assert axes["r2"] != axes["mae"]
    assert {figure.layout.yaxis.title.text, figure.layout.yaxis2.title.text} == {
        "in the target's unit",
        "R² (no unit, 1 is perfect)",
    }
