"""What the Dash apps show, called as Dash calls them: real data drawn within bounds, and
a sentence naming the API that is down instead of a broken graph."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from django.test import override_settings

from django_admin.apis import API_NAMES, reset_clients
from django_admin.dashboards import data
from django_admin.dashboards.dash_apps import main, monitoring, realtime
from django_admin.dashboards.dash_apps.common import NO_VALUE, SEE_NOTICE
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
