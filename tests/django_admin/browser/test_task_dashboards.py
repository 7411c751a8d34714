"""The dashboards pick the plots of each use case's task, as a person sees them: beside the
streaming regression slice, a classification use case (the quality_class demo) and an
anomaly one (the sensor_anomaly demo), each with a model of its task bound to a service
and production rows up to now seeded through ml_data_api with that model's
own predictions, scores and (for most rows) the ground truth. Screenshots land in
test-artifacts/screenshots/ (their paths are printed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from django_admin.dashboards import data
from gits_common.schemas import Task, UseCase
from gits_ml import modeling
from gits_ml.demo import DemoConfig
from gits_ml.demos import (
    QUALITY_CLASS,
    SENSOR_ANOMALY,
    generate_quality_class,
    generate_sensor_anomaly,
)
from tests.amqp_helpers import delete_service_queues
from tests.django_admin.browser.conftest import (
    Stack,
    bind_model,
    choose,
    insert_rows,
    off_the_loop,
    open_dashboard,
    poll,
    register_use_case,
    shoot,
)

pytestmark = pytest.mark.slow

# Small demos: training in seconds, and production rows of one a second up to now.
CLASS_CONFIG = DemoConfig(history_hours=1500, production_minutes=60)
ANOMALY_CONFIG = DemoConfig(history_hours=3000, production_minutes=1500)
PRODUCTION_ROWS = 450  # all of them within the main dashboard's newest MAX_PREDICTIONS
LABELLED_EVERY = 3  # of the classification rows, one in three has no ground truth yet
REALTIME_WINDOW = "30 minutes"

# Per graph of a Dash app (by the id of its dcc.Graph): each trace's type, name and
# number of values, each layout shape's type and place, and the annotations' texts.
FIGURES_JS = """(ids) => Object.fromEntries(ids.map(id => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    const layout = (gd && gd._fullLayout) || {};
    return [id, {
        traces: ((gd && gd.data) || []).map(t => ({
            type: t.type || 'scatter', name: t.name || '',
            points: (t.type === 'heatmap' ? (t.z || []).flat() : (t.x || [])).length,
        })),
        shapes: (layout.shapes || []).map(s => ({type: s.type, yref: s.yref, y0: s.y0})),
        annotations: (layout.annotations || []).map(a => a.text || ''),
    }];
}))"""
Figures = dict[str, dict[str, list[Any]]]


@dataclass(frozen=True)
class TaskCase:
    """A seeded use case of one task, and the service bound to its model."""

    use_case: UseCase
    service: str
    routing_key: str


assert PRODUCTION_ROWS <= data.MAX_PREDICTIONS


@pytest.fixture(scope="module")
def cases(stack: Stack) -> Iterator[dict[Task, TaskCase]]:
    """A classification and an anomaly use case beside the stack's, seeded."""
    suffix = stack.service.rsplit("_", 1)[1]
    found = {
        Task.classification: seed_classification(stack, suffix),
        Task.anomaly: seed_anomaly(stack, suffix),
    }
    yield found
    for case in found.values():
        off_the_loop(delete_service_queues, stack.amqp_url, case.service)


def task_case(stack: Stack, demo: UseCase, suffix: str) -> TaskCase:
    """The demo's definition under a name of this run; its service and routing key."""
    case = demo.model_copy(update={"name": f"{demo.name}_{suffix}"})
    return TaskCase(case, f"service_{case.name}", f"gits.browser.{case.name}")


def seed_classification(stack: Stack, suffix: str) -> TaskCase:
    """quality_class: a logistic regression, and the testing rows as production rows."""
    found = task_case(stack, QUALITY_CLASS, suffix)
    demo = generate_quality_class(CLASS_CONFIG)
    register_use_case(stack, found.use_case, {"training": demo.training})
    pipeline, _ = modeling.train(found.use_case, demo.training, include=["lr"])
    bind_model(stack, found.use_case, found.service, found.routing_key, modeling.to_bytes(pipeline))
    rows = demo.testing.iloc[:PRODUCTION_ROWS].reset_index(drop=True)
    labelled = rows.index % LABELLED_EVERY != 0
    rows["grade"] = rows["grade"].where(labelled, None)
    store_production(stack, found.use_case, rows, pipeline)
    return found


def seed_anomaly(stack: Stack, suffix: str) -> TaskCase:
    """sensor_anomaly: an isolation forest whose threshold is chosen on the testing rows,
    and production rows around two injected anomalies, every one labelled."""
    found = task_case(stack, SENSOR_ANOMALY, suffix)
    demo = generate_sensor_anomaly(ANOMALY_CONFIG)
    register_use_case(stack, found.use_case, {"training": demo.training})
    pipeline, _ = modeling.train(
        found.use_case, demo.training, include=["iforest"], evaluation=demo.testing
    )
    bind_model(stack, found.use_case, found.service, found.routing_key, modeling.to_bytes(pipeline))
    rows = demo.ground_truth.drop(columns=["available_at"]).iloc[300 : 300 + PRODUCTION_ROWS]
    assert rows["anomaly"].sum() > 0  # injected anomalies among them
    store_production(stack, found.use_case, rows.reset_index(drop=True), pipeline)
    return found


def store_production(stack: Stack, case: UseCase, rows: pd.DataFrame, pipeline: Any) -> None:
    """Store `rows` (features and target) as production rows one a second up to now, with
    the model's predictions and scores as a worker stores them."""
    said = modeling.predict(
        pipeline,
        rows[case.feature_names],
        task=case.task,
        label_type=modeling.prediction_type(case),
    )
    now = datetime.now(UTC)
    rows = rows.assign(
        message_id=[f"{case.name}-{i}" for i in range(len(rows))],
        timestamp=[now - timedelta(seconds=len(rows) - i) for i in range(len(rows))],
        prediction=said.labels,
        prediction_score=said.scores,
        model_version=f"{case.name}:1",
    )
    insert_rows(stack, case, "production", rows)


def figures(frame: Any, ids: list[str]) -> Figures:
    """What each graph draws now."""
    found: Figures = frame.evaluate(FIGURES_JS, ids)
    return found


def drawn(frame: Any, ids: list[str], *, timeout: float = 60) -> Figures:
    """The graphs once each draws at least one value."""
    return poll(
        lambda: figures(frame, ids),
        lambda f: all(sum(t["points"] for t in f[i]["traces"]) for i in ids),
        timeout=timeout,
    )


def keep(page: Any, screenshots: Path, name: str) -> None:
    """Save the page's screenshot and say where it is."""
    print(f"screenshot: {shoot(page, screenshots, name)}")


def test_main_dashboard_draws_a_classifiers_plots(
    page: Any, stack: Stack, cases: dict[Task, TaskCase], screenshots: Path
) -> None:
    case = cases[Task.classification]
    try:
        # When the user opens the main dashboard and picks the classification service
        frame = open_dashboard(page, stack, "main")
        choose(frame, "#service", case.service)
        graphs = ["confusion-matrix", "class-balance", "score-distribution"]
        found = drawn(frame, graphs)
        # Then the confusion matrix is a heatmap of the labelled rows (2 x 2 classes)
        (matrix,) = found["confusion-matrix"]["traces"]
        assert matrix["type"] == "heatmap" and matrix["points"] == 4
        # The class balance compares predicted and labelled shares
        names = [t["name"] for t in found["class-balance"]["traces"]]
        labelled = PRODUCTION_ROWS - PRODUCTION_ROWS // LABELLED_EVERY
        assert names == [f"predicted ({PRODUCTION_ROWS} rows)", f"labelled truth ({labelled} rows)"]
        # And the scores are histograms, one per predicted class
        histograms = found["score-distribution"]["traces"]
        assert {t["type"] for t in histograms} == {"histogram"}
        assert sum(t["points"] for t in histograms) == PRODUCTION_ROWS
        assert "(classification)" in frame.inner_text("#use-case")
        assert frame.locator("#predictions").count() == 0  # no regression line
    finally:
        keep(page, screenshots, "main-classification")


def test_main_dashboard_draws_an_anomaly_models_plots(
    page: Any, stack: Stack, cases: dict[Task, TaskCase], screenshots: Path
) -> None:
    case = cases[Task.anomaly]
    try:
        frame = open_dashboard(page, stack, "main")
        choose(frame, "#service", case.service)
        found = drawn(frame, ["anomaly-score", "anomaly-rate"])
        check_anomaly_score(stack, case, found["anomaly-score"])
        assert found["anomaly-rate"]["traces"][0]["type"] == "bar"
    finally:
        keep(page, screenshots, "main-anomaly")


def test_realtime_view_draws_the_anomaly_score_threshold_and_spans(
    page: Any, stack: Stack, cases: dict[Task, TaskCase], screenshots: Path
) -> None:
    case = cases[Task.anomaly]
    try:
        # When the user opens the real-time view over the last half hour
        frame = open_dashboard(page, stack, "realtime")
        choose(frame, "#window", REALTIME_WINDOW)
        # Then the anomaly section offers the anomaly service, and only it
        frame.wait_for_selector("#anomaly-section", state="visible", timeout=30_000)
        assert case.service in frame.inner_text("#anomaly-service")
        # And draws its score with the threshold and flagged spans, and its rate
        found = drawn(frame, ["anomaly-score", "anomaly-rate"])
        found = poll(  # the threshold comes with monitoring_api's report
            lambda: figures(frame, ["anomaly-score"]),
            lambda f: (
                any(s["type"] == "line" for s in f["anomaly-score"]["shapes"])
                or any(
                    a.startswith("No threshold line:") for a in f["anomaly-score"]["annotations"]
                )
            ),
            timeout=60,
        )
        check_anomaly_score(stack, case, found["anomaly-score"])
        assert "model " in frame.inner_text("#anomaly-summary")
    finally:
        keep(page, screenshots, "realtime-anomaly")


def check_anomaly_score(stack: Stack, case: TaskCase, shown: dict[str, list[Any]]) -> None:
    """The score figure shades flagged spans, and draws monitoring_api's threshold as a
    line, or says in words why there is none."""
    assert shown["traces"][0]["name"] == "anomaly score"
    assert any(t["name"].startswith("labelled anomaly") for t in shown["traces"])
    spans = [s for s in shown["shapes"] if s["type"] == "rect"]
    assert spans, "no flagged span shaded"
    with stack.http("monitoring_api") as monitoring:
        answer = monitoring.get(
            f"/monitoring_api/use_cases/{case.use_case.name}/anomalies",
            params={"last": PRODUCTION_ROWS, "bucket_seconds": 30},
        )
    threshold = answer.json().get("threshold") if answer.is_success else None
    lines = [s["y0"] for s in shown["shapes"] if s["type"] == "line"]
    if threshold is None:
        assert not lines and any("No threshold line" in a for a in shown["annotations"])
    else:
        assert lines == [pytest.approx(threshold)]
