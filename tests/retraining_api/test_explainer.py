"""The explainer dashboard engine: a static page for any model, which says what it
explains, built from real PyCaret pipelines on small demo data."""

from __future__ import annotations

import re
import socket
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml import modeling
from gits_ml.demo import FEATURES, PRODUCT_QUALITY, TARGET, DemoConfig, generate
from retraining_api import anomaly_explainer, explainer_rows
from retraining_api.explainer import CDN_TAG, ExplainerPage, build_dashboard

DEMO = generate(DemoConfig(history_hours=300, production_minutes=200))
GRADES = np.array(["A", "B", "C"])
GRADING = UseCase(
    name="grading",
    task=Task.classification,
    features=[
        Column(name="pressure"),
        Column(name="production_line", type=ColumnType.text),
        Column(name="batch_size", type=ColumnType.int),
    ],
    target=Column(name="grade", type=ColumnType.text),
    time_column="ts",
)


SENSOR_FEATURES = ["vibration", "temperature", "current"]
QUALITY = UseCase(
    name="quality",
    task=Task.classification,
    features=[Column(name=f) for f in SENSOR_FEATURES],
    target=Column(name="grade", type=ColumnType.text),
)
SPIKES = UseCase(
    name="spikes",
    task=Task.anomaly,
    features=[Column(name=f) for f in SENSOR_FEATURES],
    target=Column(name="anomaly", type=ColumnType.int),
)


def grades(n: int, *, seed: int) -> pd.DataFrame:
    """Sensor readings graded "off_spec" when hot and vibrating (about 10% of them)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "vibration": rng.normal(2.0, 0.5, n),
            "temperature": rng.normal(60.0, 5.0, n),
            "current": rng.normal(10.0, 1.0, n),
        }
    )
    risk = (frame.vibration - 2.0) / 0.5 + (frame.temperature - 60.0) / 5.0
    return frame.assign(grade=np.where(risk > 1.8, "off_spec", "in_spec"))


def spikes(n: int, *, seed: int) -> pd.DataFrame:
    """Sensor readings with a vibration spike (label 1) every 20th row."""
    frame = grades(n, seed=seed).drop(columns=["grade"])
    label = (np.arange(n) % 20 == 10).astype(int)
    frame.loc[label == 1, "vibration"] += 6.0
    return frame.assign(anomaly=label)


def batches(n: int, *, seed: int) -> pd.DataFrame:
    """n inspected batches: pressure and size, the line that made them, their grade."""
    rng = np.random.default_rng(seed)
    pressure = rng.normal(1.0, 0.2, n)
    return pd.DataFrame(
        {
            "pressure": pressure,
            "production_line": rng.choice(["L1", "L2", "L3"], n),
            "batch_size": rng.integers(10, 20, n),
            "grade": GRADES[np.digitize(pressure, [0.9, 1.1])],
        }
    )


@pytest.fixture(scope="module")
def forest() -> Any:
    """A random forest for the demo's product quality."""
    pipeline, _ = modeling.train(PRODUCT_QUALITY, DEMO.training, include=["rf"])
    return pipeline


@pytest.fixture(scope="module")
def forest_page(forest) -> ExplainerPage:
    """The forest explained on 50 of the demo's training rows."""
    return build_dashboard(
        forest,
        DEMO.training,
        use_case=PRODUCT_QUALITY,
        title="rf v3 on product_quality",
        data_name="training",
        max_rows=50,
    )


@pytest.fixture(scope="module")
def grader() -> Any:
    """A logistic regression that grades batches."""
    pipeline, _ = modeling.train(GRADING, batches(300, seed=1), include=["lr"])
    return pipeline


@pytest.fixture
def few_rows(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pages whose individual tabs offer 3 rows, not 10: a test that looks elsewhere
    need not wait for them."""
    monkeypatch.setattr(explainer_rows, "ROWS", 3)
    return 3


def banner(page: ExplainerPage) -> str:
    """The text of the box at the top of the page."""
    start = page.html.index('id="gits-explained"')
    return page.html[start : page.html.index("</div>", start)]


def row_choices(page: ExplainerPage, tab: str) -> list[str]:
    """The rows a tab's selector offers ("<row id>: predicted 312.4, observed 318")."""
    start = page.html.index(f'id="gits-rows-{tab}-select"')
    select = page.html[start : page.html.index("</select>", start)]
    return re.findall(r'<option value="\d+">([^<]*)</option>', select)


def ranked(page: ExplainerPage) -> set[str]:
    """The features the importances plot ranks ("1. T_data_3_2", ...)."""
    return set(re.findall(r'"\d+\. ([A-Za-z]\w*)"', page.html))


def test_the_page_ranks_every_feature_and_names_the_model(forest_page):
    page = forest_page.html

    assert page.lstrip().startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert ranked(forest_page) == set(FEATURES)
    assert "rf v3 on product_quality" in banner(forest_page)
    assert page.index("gits-explained") < page.index('class="nav nav-tabs"')  # on top


def test_a_random_forest_gets_approximate_tree_shap_on_at_most_max_rows(forest_page):
    text = banner(forest_page)

    assert forest_page.shap == "tree SHAP (approximate)"
    assert (forest_page.rows_explained, forest_page.rows_available) == (50, len(DEMO.training))
    expected = f"50 of {len(DEMO.training)} training rows, sampled at random (seed 7); "
    assert expected + "tree SHAP (approximate)" in text
    assert "target values score the model" in text
    assert "Regression Stats" in forest_page.html  # labelled rows: the model is scored


@pytest.mark.parametrize("rows", ["no target column", "some targets missing"])
def test_rows_without_target_values_still_give_a_page(forest, rows, few_rows):
    # Given production readings, before (or while) their ground truth arrives
    frame = DEMO.production
    if rows == "some targets missing":
        frame = DEMO.training.assign(**{TARGET: DEMO.training[TARGET].mask(lambda s: s < 360)})
    stages: list[tuple[str, int]] = []

    page = build_dashboard(
        forest,
        frame,
        use_case=PRODUCT_QUALITY,
        title="rf v3",
        data_name="production",
        max_rows=40,
        progress=lambda stage, percent: stages.append((stage, percent)),
    )

    assert f"40 of {len(frame)} production rows" in banner(page)
    assert "explained but not scored" in banner(page)
    assert "Regression Stats" not in page.html
    assert ranked(page) == set(FEATURES)
    assert [s for s, _ in stages[:3]] == ["sampling", "computing SHAP", "rendering"]
    assert [p for _, p in stages] == sorted(p for _, p in stages) and stages[-1][1] == 100


def test_a_classification_use_case_names_its_features_and_classes(grader, monkeypatch, few_rows):
    def no_network(*args: object) -> None:
        raise AssertionError("the dashboard tried the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    page = build_dashboard(
        grader, batches(120, seed=2), use_case=GRADING, title="lr v1", data_name="testing"
    )

    assert page.shap == "linear SHAP, in log-odds"
    assert page.rows_explained == page.rows_available == 120
    # the one-hot columns of the text feature are ranked as that one feature
    assert ranked(page) == {"pressure", "production_line", "batch_size"}
    assert "Classification Stats" in page.html
    assert all(f'"{grade}"' in page.html for grade in GRADES)  # the class selector
    # the rows are offered by the probability of the default class, with their grade
    choices = row_choices(page, "whatif")
    assert len(choices) == few_rows and all(
        re.search(r": P\([ABC]\) [\d.]+, observed [ABC]$", c) for c in choices
    )
    assert "Selected index: <b>None</b>" not in page.html


def test_ungraded_batches_are_explained_but_not_scored(grader, few_rows):
    ungraded = batches(80, seed=3).drop(columns=["grade"])

    page = build_dashboard(
        grader, ungraded, use_case=GRADING, title="lr v1", data_name="production"
    )

    assert "80 of 80 production rows" in banner(page)
    assert "explained but not scored" in banner(page)
    assert "Classification Stats" not in page.html
    assert ranked(page) == {"pressure", "production_line", "batch_size"}


def test_a_model_without_a_fast_shap_method_gets_kernel_shap(few_rows):
    pipeline, _ = modeling.train(PRODUCT_QUALITY, DEMO.training, include=["knn"])

    page = build_dashboard(
        pipeline,
        DEMO.training,
        use_case=PRODUCT_QUALITY,
        title="knn",
        data_name="training",
        max_rows=30,
    )

    assert page.shap.startswith("kernel SHAP on a ") and "-point k-means background" in page.shap
    assert "feature coalitions per row" in page.shap
    assert page.rows_explained == 30  # a fast model: every row asked for
    expected = f"30 of {len(DEMO.training)} training rows"
    assert f"{expected}, sampled at random (seed 7); {page.shap}" in banner(page)
    assert len(row_choices(page, "individual")) == few_rows


@pytest.mark.slow
def test_a_support_vector_machine_explains_200_rows_within_30_seconds():
    # Given PyCaret's svm (an RBF support vector regression): no fast SHAP method, and
    # 0.4 ms per predicted row
    data = generate(DemoConfig(history_hours=3000, production_minutes=100))
    pipeline, _ = modeling.train(PRODUCT_QUALITY, data.training, include=["svm"])

    page = build_dashboard(
        pipeline,
        data.testing,
        use_case=PRODUCT_QUALITY,
        title="svm",
        data_name="testing",
        max_rows=300,
    )

    assert page.rows_explained >= 200 and page.seconds < 30
    assert page.shap.startswith("kernel SHAP on a ")
    assert f"{page.rows_explained} of {len(data.testing)} testing rows" in banner(page)


def test_every_tab_shows_a_row_and_a_selector_switches_between_rows(forest_page):
    page = forest_page.html

    # no tab is left on explainerdashboard's "Selected index: None"
    assert "Selected index: <b>None</b>" not in page and "input data incorrect" not in page
    for tab in ("individual", "whatif"):
        choices = row_choices(forest_page, tab)
        # up to 10, as many as the drawing's time budget allows (fewer on a busy machine),
        # spread over the predictions, lowest first
        assert 2 <= len(choices) <= 10
        predicted = [float(re.search(r"predicted ([\d.]+)", c).group(1)) for c in choices]
        assert predicted == sorted(predicted)
        # each choice has its own drawing of that row, the first one shown
        shown = re.findall(r'<div data-gits-row="(\d+)"( hidden)?>', page)
        assert ("0", "") in shown
    ids = [choice.split(":")[0] for choice in row_choices(forest_page, "individual")]
    assert all(f"Selected index: <b>{row_id}</b>" in page for row_id in ids)
    # the what-if inputs hold the row's values
    values = re.findall(r'<input id="T_data_1_1" type="text" value="([^"]*)"', page)
    assert len(values) == len(ids) and "None" not in values


def test_a_binary_text_target_gets_importances_and_stats_for_each_class(few_rows):
    frame = grades(300, seed=1)
    pipeline, _ = modeling.train(QUALITY, frame, include=["lr"])

    page = build_dashboard(
        pipeline, grades(100, seed=2), use_case=QUALITY, title="lr", data_name="testing"
    )

    for grade in ("in_spec", "off_spec"):
        assert f"Feature Importances: {grade}" in page.html
        assert f"Classification Stats: {grade}" in page.html
    assert ranked(page) == set(SENSOR_FEATURES)


@pytest.fixture(scope="module")
def detectors() -> dict[str, Any]:
    """An isolation forest, a robust covariance and a k-nearest-neighbours detector of
    vibration spikes."""
    setup = modeling.experiment(SPIKES, grades(400, seed=3).drop(columns=["grade"]))
    return {
        model: modeling.best_model(setup, Task.anomaly, include=[model])[0]
        for model in ("iforest", "mcd", "knn")
    }


def test_an_isolation_forest_is_explained_by_contributions_to_its_anomaly_score(detectors):
    # Given readings where every 20th row has a vibration spike
    frame = spikes(200, seed=4)
    forest = detectors["iforest"]

    contributions = anomaly_explainer.feature_contributions(forest, frame, SPIKES)
    page = build_dashboard(
        forest, frame, use_case=SPIKES, title="iforest v1", data_name="production", max_rows=150
    )

    # a row's contributions add up to its anomaly score's rank, exactly (tree SHAP)
    scores = modeling.anomaly_scores(forest, frame[SENSOR_FEATURES])
    total = contributions.sum(axis=1).to_numpy()
    assert (np.argsort(total) == np.argsort(scores)).mean() > 0.99
    # the spikes are explained by vibration
    spiked = frame.anomaly.to_numpy() == 1
    assert (contributions[spiked].idxmax(axis=1) == "vibration").mean() >= 0.8
    assert page.shap == anomaly_explainer.explainable(forest).method
    assert "tree SHAP" in page.shap
    assert (page.rows_explained, page.rows_available) == (150, 200)
    assert "150 of 200 production rows" in banner(page)
    assert "Mean |contribution| to the anomaly score" in page.html
    assert "<script>" in page.html and not CDN_TAG.search(page.html)  # opens offline


def test_a_robust_covariance_model_splits_its_score_exactly_among_the_features(detectors):
    # The demo's sensor_anomaly model is an mcd: its score is a squared Mahalanobis
    # distance, whose terms d_i (P d)_i add up to it exactly.
    frame = spikes(200, seed=6)
    mcd = detectors["mcd"]

    contributions = anomaly_explainer.feature_contributions(mcd, frame, SPIKES)
    page = build_dashboard(
        mcd, frame, use_case=SPIKES, title="mcd v1", data_name="production", max_rows=150
    )

    scores = modeling.anomaly_scores(mcd, frame[SENSOR_FEATURES])
    np.testing.assert_allclose(contributions.sum(axis=1).to_numpy(), scores, rtol=1e-9)
    spiked = frame.anomaly.to_numpy() == 1
    assert (contributions[spiked].idxmax(axis=1) == "vibration").mean() >= 0.8
    assert "Mahalanobis" in page.shap and "Mahalanobis" in banner(page)


def test_another_anomaly_model_is_refused_naming_the_model(detectors):
    with pytest.raises(ValueError) as refused:
        build_dashboard(
            detectors["knn"], spikes(50, seed=5), use_case=SPIKES, title="knn", data_name="testing"
        )

    assert "anomaly model KNN (pyod.models.knn) cannot be explained" in str(refused.value)
    assert "available for isolation forests" in str(refused.value)
    assert "robust covariance models ('mcd'" in str(refused.value)
