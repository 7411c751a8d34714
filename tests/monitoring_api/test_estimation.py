"""Performance estimated before the labels (CBPE, DLE) tracks the realised performance on
synthetic but realistic data: a scikit-learn classifier and regressor trained on
generated sensor rows, judged on windows with and without covariate shift (the relation
of the target to the features kept, as both methods assume).

Tolerances: |estimated - realised| accuracy <= 0.03 and macro F1 <= 0.05 on windows of
3,000 rows (the sampling error of a realised accuracy near 0.85 is about 0.007 there);
estimated MAE and RMSE within 10% of the realised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from monitoring_api import performance
from monitoring_api.estimation import CBPE, DLE, expected_scores

WEIGHTS = np.array([1.5, -1.0, 0.8, 0.0, 0.5])
CLASS_FEATURES = [f"x{i}" for i in range(5)]
REGRESSION_FEATURES = [f"x{i}" for i in range(4)]
SHIFTS = [0.0, 1.0, 2.0, -1.0]  # the mean of x0, in standard deviations


def graded(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    """n rows of five sensors and their grade, ~16% off-spec; `shift` moves sensor x0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 5))
    x[:, 0] += shift
    off = rng.random(n) < 1 / (1 + np.exp(-(x @ WEIGHTS - 2.5)))
    return pd.DataFrame(x, columns=CLASS_FEATURES), pd.Series(
        np.where(off, "off_spec", "in_spec"), dtype=object
    )


def measured(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    """n rows of four sensors and a quality whose noise grows with |x0|
    (heteroscedastic: a shift of x0 changes the model's error)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 4))
    x[:, 0] += shift
    noise = rng.normal(0, 0.3 + 0.7 * np.abs(x[:, 0]), n)
    quality = 2 * x[:, 0] + np.sin(x[:, 1]) + 0.5 * x[:, 2] + noise
    return pd.DataFrame(x, columns=REGRESSION_FEATURES), pd.Series(quality)


@pytest.fixture(scope="module")
def classifier() -> tuple[LogisticRegression, CBPE]:
    """A classifier trained on 5,000 rows and CBPE fitted on 2,000 held-out rows."""
    features, grades = graded(5000, seed=1)
    model = LogisticRegression().fit(features, grades)
    reference, truth = graded(2000, seed=2)
    predicted, confidence = outputs(model, reference)
    positive = performance.positive_class(grades)
    return model, CBPE.fit(truth, predicted, confidence, positive)


def outputs(model: LogisticRegression, features: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """Predicted labels and the probability of each, as a worker stores them."""
    probabilities = model.predict_proba(features)
    labels = pd.Series(model.classes_[probabilities.argmax(axis=1)], dtype=object)
    return labels, probabilities.max(axis=1)


@pytest.fixture(scope="module")
def regressor() -> tuple[GradientBoostingRegressor, DLE]:
    """A regressor trained on 5,000 rows and DLE fitted on 3,000 held-out rows."""
    features, quality = measured(5000, seed=1)
    model = GradientBoostingRegressor(random_state=0).fit(features, quality)
    reference, truth = measured(3000, seed=2)
    predicted = pd.Series(model.predict(reference))
    return model, DLE.fit(reference, truth, predicted, features=REGRESSION_FEATURES, categorical=[])


def test_the_positive_class_is_the_minority_of_the_reference():
    _, grades = graded(2000, seed=2)

    assert performance.positive_class(grades) == "off_spec"
    assert performance.positive_class(pd.Series(["a", "b", "c"])) is None


@pytest.mark.parametrize("shift", SHIFTS)
def test_cbpe_tracks_realised_accuracy_and_f1(classifier, shift):
    model, cbpe = classifier
    features, truth = graded(3000, seed=10, shift=shift)
    predicted, confidence = outputs(model, features)

    estimated = cbpe.estimate(predicted, confidence)

    realised = performance.classification(truth, predicted)
    assert estimated["accuracy"] == pytest.approx(realised["accuracy"], abs=0.03)
    assert estimated["f1"] == pytest.approx(realised["f1"], abs=0.05)


def test_cbpe_sees_accuracy_fall_under_covariate_shift(classifier):
    model, cbpe = classifier
    steady = cbpe.estimate(*outputs(model, graded(3000, seed=11)[0]))
    shifted = cbpe.estimate(*outputs(model, graded(3000, seed=11, shift=1.0)[0]))

    # x0 pushed toward the boundary: more rows the model is unsure of
    assert steady["accuracy"] is not None and shifted["accuracy"] is not None
    assert shifted["accuracy"] < steady["accuracy"] - 0.04


@pytest.mark.parametrize("shift", SHIFTS)
def test_dle_tracks_realised_mae_and_rmse(regressor, shift):
    model, dle = regressor
    features, truth = measured(3000, seed=20, shift=shift)
    predicted = pd.Series(model.predict(features))

    estimated = dle.estimate(features, predicted)

    realised = performance.regression(truth, predicted)
    assert estimated["mae"] == pytest.approx(realised["mae"], rel=0.10)
    assert estimated["rmse"] == pytest.approx(realised["rmse"], rel=0.10)


def test_reference_metrics_are_the_realised_ones_there(classifier, regressor):
    _, cbpe = classifier
    _, dle = regressor

    assert 0.8 < (cbpe.reference["accuracy"] or 0) < 0.95
    assert 0.5 < (dle.reference["mae"] or 0) < 1.0


def test_multiclass_cbpe_estimates_accuracy_alone():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(1 / 3, 1, 2000)
    right = rng.random(2000) < confidence  # calibrated by construction
    truth = pd.Series(rng.choice(["a", "b", "c"], 2000), dtype=object)
    predicted = truth.where(right, truth.map({"a": "b", "b": "c", "c": "a"}))
    cbpe = CBPE.fit(truth, predicted, confidence, positive=None)

    estimated = cbpe.estimate(predicted, confidence)

    assert estimated["accuracy"] == pytest.approx(right.mean(), abs=0.01)
    assert estimated["precision"] is None and estimated["f1"] is None


def test_expected_scores_of_an_exact_confusion_matrix_are_sklearns():
    truth = pd.Series([0, 0, 0, 1, 1, 0, 1, 0], dtype=object)
    predicted = pd.Series([0, 1, 0, 1, 0, 0, 1, 0], dtype=object)
    confusion = np.array([[4.0, 1.0], [1.0, 2.0]])  # [[TN, FP], [FN, TP]] of the above

    assert expected_scores(confusion) == pytest.approx(performance.classification(truth, predicted))


# Windows drawn from the generators: a seed, a shift and a size.
windows = st.tuples(st.integers(0, 10_000), st.floats(-2, 2, allow_nan=False), st.integers(1, 300))


@settings(max_examples=40, deadline=None)
@given(window=windows, order=st.randoms(use_true_random=False))
def test_cbpe_estimates_are_shares_and_ignore_row_order(classifier, window, order):
    model, cbpe = classifier
    seed, shift, size = window
    predicted, confidence = outputs(model, graded(size, seed=seed, shift=shift)[0])
    shuffled = list(range(size))
    order.shuffle(shuffled)

    estimated = cbpe.estimate(predicted, confidence)
    permuted = cbpe.estimate(predicted.iloc[shuffled], confidence[shuffled])

    for value in estimated.values():
        assert value is not None and 0 <= value <= 1
    assert permuted == pytest.approx(estimated)


@settings(max_examples=40, deadline=None)
@given(window=windows, cut=st.floats(0, 1), order=st.randoms(use_true_random=False))
def test_dle_estimates_are_losses_that_ignore_row_order_and_add_up(regressor, window, cut, order):
    model, dle = regressor
    seed, shift, size = window
    features = measured(size, seed=seed, shift=shift)[0]
    predicted = pd.Series(model.predict(features))
    shuffled = list(range(size))
    order.shuffle(shuffled)

    estimated = dle.estimate(features, predicted)
    permuted = dle.estimate(features.iloc[shuffled], predicted.iloc[shuffled])
    parts = dle.parts(features, predicted)
    split = int(cut * size)
    rejoined = dle.combine(np.concatenate([parts[:split], parts[split:]]))

    assert estimated["mae"] is not None and estimated["mae"] >= 0
    assert estimated["rmse"] is not None and estimated["rmse"] >= 0
    assert permuted == pytest.approx(estimated)
    assert rejoined == pytest.approx(estimated)


def test_no_rows_estimate_nothing(classifier, regressor):
    _, cbpe = classifier
    _, dle = regressor

    assert cbpe.estimate(pd.Series([], dtype=object), np.array([])) == dict.fromkeys(
        ("accuracy", "precision", "recall", "f1")
    )
    assert dle.estimate(pd.DataFrame(columns=REGRESSION_FEATURES), pd.Series([])) == {
        "mae": None,
        "rmse": None,
    }
