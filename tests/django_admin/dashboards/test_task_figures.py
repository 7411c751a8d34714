"""Each task's plots, from frames built here: a classifier's confusion matrix, class balance
and score distribution; an anomaly model's score with its threshold and flagged spans, and
its anomaly rate; and which of them each dashboard picks for a use case's task. No browser,
no API: the APIs' answers are faked at `data.client`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from django_admin.dashboards import data
from django_admin.dashboards.dash_apps import main, realtime, task_figures
from gits_common import errors
from gits_ml.demo import PRODUCT_QUALITY
from gits_ml.demos import QUALITY_CLASS, SENSOR_ANOMALY

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
IN, OFF = "in_spec", "off_spec"


def rows(
    predictions: list[Any],
    *,
    targets: list[Any] | None = None,
    scores: Sequence[float | None] | None = None,
    every: float = 1.0,
) -> pd.DataFrame:
    """Production rows as `data.production_rows` gives them, one every `every` seconds."""
    n = len(predictions)
    return pd.DataFrame(
        {
            "time": pd.date_range(T0, periods=n, freq=pd.Timedelta(seconds=every)),
            "message_id": [f"m{i}" for i in range(n)],
            "prediction": pd.Series(predictions, dtype=object),
            "target": pd.Series(targets if targets is not None else [None] * n, dtype=object),
            "prediction_score": pd.Series(scores if scores else [None] * n, dtype=float),
            "model_version": "m:1",
        }
    )


class FakeClient:
    """An API client whose answer to each path is given (a value, or an error raised)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        self.asked.append((path, params or {}))
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def apis(monkeypatch) -> Callable[[dict[str, Any]], FakeClient]:
    """Fake every API's answers: `apis({path: answer})`."""

    def fake(answers: dict[str, Any]) -> FakeClient:
        found = FakeClient(answers)
        monkeypatch.setattr(data, "client", lambda api: found)
        return found

    return fake


ANOMALIES = "/monitoring_api/use_cases/sensor_anomaly/anomalies"
REPORT = {
    "use_case": "sensor_anomaly",
    "model_version": "iforest:3",
    "threshold": 0.25,
    "rate": [],
    "events": [],
    "anomaly_rate": 0.2,
    "alert_threshold": 0.1,
    "alerting": True,
}


# --- reading production rows ---


def test_production_rows_keep_class_labels_and_flags_as_stored(apis) -> None:
    # Given stored anomaly flags (int) whose labels are partly missing, and their scores
    stored = [
        {"timestamp": "2025-03-01T12:00:00Z", "message_id": "a", "prediction": 1,
         "prediction_score": 0.9, "anomaly": None, "model_version": "if:1"},
        {"timestamp": "2025-03-01T12:00:01Z", "message_id": "b", "prediction": 0,
         "prediction_score": None, "anomaly": 1, "model_version": "if:1"},
    ]  # fmt: skip
    apis({"/ml_data_api/use_cases/sensor_anomaly/production/rows": {"rows": stored}})
    # When read
    frame = data.production_rows(SENSOR_ANOMALY, last=10)
    # Then flags and labels stay the ints stored (a missing label does not make 1 into
    # 1.0), scores are floats, NaN where none
    assert list(frame["prediction"]) == [1, 0] and frame["target"].iloc[1] == 1
    assert isinstance(frame["target"].iloc[1], int) and frame["target"].iloc[0] is None
    assert frame["prediction_score"].iloc[0] == pytest.approx(0.9)
    assert np.isnan(frame["prediction_score"].iloc[1])
    assert str(frame["time"].dt.tz) == "UTC"


def test_regression_rows_are_numbers(apis) -> None:
    stored = [{"timestamp": "2025-03-01T12:00:00Z", "prediction": 301.5, "quality": None}]
    apis({"/ml_data_api/use_cases/product_quality/production/rows": {"rows": stored}})
    frame = data.production_rows(PRODUCT_QUALITY, last=10)
    assert frame["prediction"].dtype == float and np.isnan(frame["target"].iloc[0])


# --- classification ---


def graded() -> pd.DataFrame:
    """Ten graded predictions: 6 in spec right, 1 in spec called off, 2 off spec right,
    1 off spec called in; and 2 more predictions without a label yet."""
    truth = [IN] * 7 + [OFF] * 3 + [None, None]
    said = [IN] * 6 + [OFF] + [OFF, OFF, IN] + [OFF, IN]
    scores = [0.9] * 6 + [0.55] + [0.8, 0.7, 0.6] + [0.95, 0.52]
    return rows(said, targets=truth, scores=scores)


def test_the_confusion_matrix_counts_labelled_rows_truth_by_prediction() -> None:
    matrix = data.confusion_matrix(graded())
    assert list(matrix.index) == list(matrix.columns) == [IN, OFF]
    assert matrix.loc[IN, IN] == 6 and matrix.loc[IN, OFF] == 1
    assert matrix.loc[OFF, OFF] == 2 and matrix.loc[OFF, IN] == 1
    assert matrix.to_numpy().sum() == 10  # the two unlabelled are left out
    assert data.confusion_matrix(rows([IN, OFF])).empty


def test_class_balance_compares_predicted_and_true_shares() -> None:
    balance = data.class_balance(graded())
    assert balance.loc[OFF, "predicted"] == 4 and balance.loc[OFF, "truth"] == 3
    assert balance.loc[OFF, "predicted_share"] == pytest.approx(4 / 12)
    assert balance.loc[OFF, "truth_share"] == pytest.approx(3 / 10)


def test_classification_figures_draw_matrix_balance_and_scores() -> None:
    frame = graded()
    # The confusion matrix is a heatmap, truth down and prediction across, with units
    (heatmap,) = task_figures.confusion_figure(frame).data
    assert heatmap.type == "heatmap" and np.asarray(heatmap.z).tolist() == [[6, 1], [1, 2]]
    assert "86%" in heatmap.text[0][0]  # 6 of the 7 in spec
    layout = task_figures.confusion_figure(frame).layout
    assert layout.xaxis.title.text == "predicted class" and layout.yaxis.title.text == "true class"
    # The balance: predicted and labelled shares side by side
    bars = task_figures.class_balance_figure(frame).data
    assert [b.name for b in bars] == ["predicted (12 rows)", "labelled truth (10 rows)"]
    # The scores: one histogram per predicted class, over 0..1
    scores = task_figures.score_distribution_figure(frame)
    assert {t.type for t in scores.data} == {"histogram"}
    assert sorted(t.name for t in scores.data) == [f"predicted {IN}", f"predicted {OFF}"]
    assert sum(len(t.x) for t in scores.data) == 12
    assert scores.layout.xaxis.title.text == "probability of the predicted class"


def test_classification_figures_say_what_they_wait_for() -> None:
    unlabelled = rows([IN, OFF])
    assert "ground truth" in annotation(task_figures.confusion_figure(unlabelled))
    assert "prediction_score" in annotation(task_figures.score_distribution_figure(unlabelled))
    assert annotation(task_figures.class_balance_figure(rows([]))) == task_figures.NO_PREDICTION


# --- anomaly ---


def flagged() -> pd.DataFrame:
    """Twelve readings a second apart: flags at 2-4 and 7, and the last two (still on)."""
    said = [0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1]
    scores = [0.1, 0.1, 0.5, 0.9, 0.6, 0.2, 0.1, 0.4, 0.1, 0.1, 0.7, 0.8]
    truth = [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, None, None]
    return rows(said, targets=truth, scores=scores)


def test_flagged_spans_are_runs_of_consecutive_flags() -> None:
    spans = data.flagged_spans(flagged())
    at = [T0 + timedelta(seconds=s) for s in range(12)]
    # Each run starts at its first flag and ends at the next reading (the flag seen off);
    # a run still going ends at its last reading
    assert list(spans["start"]) == [at[2], at[7], at[10]]
    assert list(spans["end"]) == [at[5], at[8], at[11]]
    assert list(spans["rows"]) == [3, 1, 2]
    assert list(spans["max_score"]) == pytest.approx([0.9, 0.4, 0.8])
    assert data.flagged_spans(rows([0, 0, None])).empty


def test_anomaly_rate_is_the_flagged_share_per_bucket() -> None:
    rates = data.anomaly_rate(flagged(), bucket="5s")
    assert list(rates["rows"]) == [5, 5, 2]
    assert list(rates["flagged"]) == [3, 1, 2]
    assert list(rates["rate"]) == pytest.approx([0.6, 0.2, 1.0])


def test_the_score_figure_draws_threshold_and_shades_flagged_spans() -> None:
    fig = task_figures.anomaly_score_figure(flagged(), threshold=0.35, note=None)
    # The score line, and the labelled anomalies as markers
    names = [t.name for t in fig.data]
    assert names == ["anomaly score", "labelled anomaly (4)"]
    # One shaded rectangle per span, and a horizontal line at the threshold
    shaded = [s for s in fig.layout.shapes if s.type == "rect"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(shaded) == 3 and all(s.xref == "x" and s.yref == "y domain" for s in shaded)
    assert len(lines) == 1 and lines[0].y0 == lines[0].y1 == 0.35
    assert fig.layout.yaxis.title.text.startswith("anomaly score")
    assert fig.layout.xaxis.title.text == "time (UTC)"


def test_without_a_threshold_the_score_figure_says_why_and_draws_no_line() -> None:
    note = "No threshold line: the model bound to this use case has no score threshold."
    fig = task_figures.anomaly_score_figure(flagged(), threshold=None, note=note)
    assert not [s for s in fig.layout.shapes if s.type == "line"]
    assert note in annotation(fig)
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 3


def test_the_rate_figure_draws_the_alert_threshold() -> None:
    fig = task_figures.anomaly_rate_figure(flagged(), alert_threshold=0.1)
    (bars,) = fig.data
    assert sum(bars.y) > 0 and fig.layout.yaxis.tickformat == ".0%"
    assert "5 of 12 rows flagged" not in fig.layout.title.text  # 6 are
    assert "6 of 12 rows flagged" in fig.layout.title.text
    assert [s.y0 for s in fig.layout.shapes] == [0.1]


def test_the_report_gives_the_threshold(apis) -> None:
    fake = apis({ANOMALIES: REPORT})
    found = task_figures.read_anomaly_report("sensor_anomaly", last=500, bucket_seconds=10)
    assert found == data.AnomalyReport(0.25, "iforest:3", 0.2, 0.1, True)
    assert fake.asked == [(ANOMALIES, {"bucket_seconds": 10, "last": 500})]
    assert task_figures.threshold_of(found) == (0.25, None)
    summary = task_figures.report_summary(found)
    assert "score threshold 0.25" in summary and "ALERTING" in summary


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (errors.Unavailable("monitoring_api answered 503: down"), "does not answer right now"),
        (errors.NotFound("monitoring_api answered 404: Not Found"), "no anomaly report"),
        (errors.Conflict("monitoring_api answered 409: wrong task"), "could not report"),
        ({**REPORT, "threshold": None}, "has no score threshold"),
    ],
    ids=["down", "no-endpoint", "refused", "no-threshold"],
)
def test_a_missing_threshold_is_said_in_words(apis, failure: Any, words: str) -> None:
    apis({ANOMALIES: failure})
    found = task_figures.read_anomaly_report("sensor_anomaly", last=500, bucket_seconds=10)
    threshold, note = task_figures.threshold_of(found)
    # Then there is no line, and a sentence without HTTP statuses or exception text
    assert threshold is None and note is not None and words in note
    assert not any(code in note for code in ("404", "409", "503", "answered", "Error"))
    # And the store of the real-time dashboard keeps it as it is
    stored = task_figures.from_store(task_figures.to_store(found))
    assert task_figures.threshold_of(stored) == (None, note)


# --- each dashboard picks its task's plots ---


def test_the_main_dashboard_picks_the_plots_of_the_task(apis) -> None:
    apis({ANOMALIES: errors.Unavailable("monitoring_api answered 503: down")})
    regression = main.task_figures_of(PRODUCT_QUALITY, rows([300.0, 301.0], targets=[300.5, None]))
    classification = main.task_figures_of(QUALITY_CLASS, graded())
    anomaly = main.task_figures_of(SENSOR_ANOMALY, flagged())
    assert list(regression) == ["predictions"]
    assert list(classification) == ["confusion-matrix", "class-balance", "score-distribution"]
    assert list(anomaly) == ["anomaly-score", "anomaly-rate"]
    assert "does not answer right now" in annotation(anomaly["anomaly-score"])


def test_the_main_dashboard_puts_the_task_graphs_on_the_page(monkeypatch, apis) -> None:
    apis({ANOMALIES: REPORT})
    monkeypatch.setattr(data, "use_case", lambda name: SENSOR_ANOMALY)
    monkeypatch.setattr(data, "production_rows", lambda definition, last: flagged())
    monkeypatch.setattr(data, "row_counts", lambda name: {"production": 12})
    graphs, _counts, production, about, messages = main.show_data(
        0, "service_a", {"service_a": "sensor_anomaly"}
    )
    drawn = {cell.children.id: cell.children.figure for cell in graphs}
    assert list(drawn) == ["anomaly-score", "anomaly-rate"]
    assert [s.y0 for s in drawn["anomaly-score"].layout.shapes if s.type == "line"] == [0.25]
    assert (production, messages) == ("12", [])
    assert about.startswith("use case sensor_anomaly (anomaly); the predictions drawn are")


def test_the_realtime_view_draws_the_anomaly_service_with_its_threshold(monkeypatch) -> None:
    # Given an anomaly service and a regression one, and monitoring_api's report read
    use_cases = {"pump": "sensor_anomaly", "line": "product_quality"}
    definitions = {"sensor_anomaly": SENSOR_ANOMALY, "product_quality": PRODUCT_QUALITY}
    monkeypatch.setattr(data, "use_case", definitions.__getitem__)
    services = [data.Service(s, u, f"rk.{s}", "m:1") for s, u in use_cases.items()]
    monkeypatch.setattr(data, "services", lambda: services)
    monkeypatch.setattr(data, "active_services", lambda: ["pump"])
    monkeypatch.setattr(realtime.FEED, "rows", lambda definition, window: flagged())
    stored = task_figures.to_store(data.AnomalyReport(0.35, "if:1", 0.5, 0.1, True))
    # When the services are listed and the anomaly graphs drawn
    *_, options, chosen, section, messages = realtime.list_services(0, None, None)
    graphs, summary, notices = realtime.show_anomalies(0, chosen, "5 minutes", stored, use_cases)
    score, rate = (cell.children.figure for cell in graphs)
    # Then only the anomaly service is offered, its section shown, threshold and spans drawn
    assert (options, chosen, section, messages) == (["pump"], "pump", {"display": "block"}, [])
    assert len([s for s in score.layout.shapes if s.type == "rect"]) == 3
    assert [s.y0 for s in score.layout.shapes if s.type == "line"] == [0.35]
    assert rate.data[0].name == "anomaly rate" and notices == []
    assert "score threshold 0.35" in summary


def test_the_live_graph_draws_each_task_as_a_number() -> None:
    # Given a long classification stream (labels are text) and an anomaly stream
    n = 3000
    times = pd.date_range(datetime.now(UTC) - timedelta(hours=1), periods=n, freq="s")
    classes = pd.DataFrame(
        {"time": times, "prediction": [IN, OFF] * (n // 2),
         "prediction_score": np.linspace(0.5, 1.0, n), "model_version": "c:1"}
    )  # fmt: skip
    pump = flagged()
    # When drawn on the live graph
    fig = realtime.live_figure(
        {"qc": classes, "pump": pump},
        "2 hours",
        tasks={"qc": QUALITY_CLASS.task, "pump": SENSOR_ANOMALY.task},
    )
    # Then each line is its scores, within the point budget
    lines = {t.name: t for t in fig.data}
    assert len(lines["qc"].y) == realtime.POINTS_PER_LINE
    assert max(lines["qc"].y) == pytest.approx(1.0)
    assert list(lines["pump"].y) == list(pump["prediction_score"])


def annotation(figure) -> str:
    """The text a figure shows in place of data, or beside it."""
    return " ".join(a.text for a in figure.layout.annotations if a.text)
