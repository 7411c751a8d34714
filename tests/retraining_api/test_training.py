"""Retraining's rules as plain functions: which data can give a meaningful result, when a
challenger beats a champion by the promotion margin, and what auto-promotion decides when
a comparison is missing."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gits_common import errors
from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml import modeling
from retraining_api import training
from retraining_api.training import Champion, Choice, Scores

PUMPS = UseCase(
    name="pumps",
    task=Task.classification,
    features=[Column(name="vibration"), Column(name="rpm")],
    target=Column(name="state", type=ColumnType.text),
    time_column="time",
)
FLOW = UseCase(
    name="flow",
    task=Task.regression,
    features=[Column(name="vibration"), Column(name="rpm")],
    target=Column(name="litres"),
    time_column="time",
)


def pumps(counts: dict[str, int], *, seed: int = 1) -> pd.DataFrame:
    """Pump readings with `counts` rows of each state; faults vibrate more."""
    rng = np.random.default_rng(seed)
    frames = [
        pd.DataFrame(
            {
                "vibration": rng.normal(3.0 if state == "fault" else 1.0, 0.4, n),
                "rpm": rng.normal(1500, 50, n),
                "state": state,
            }
        )
        for state, n in counts.items()
    ]
    return pd.concat(frames, ignore_index=True).sample(frac=1, random_state=seed)


def flows(n: int, *, seed: int = 1, constant: float | None = None) -> pd.DataFrame:
    """Pump readings and their flow in litres (or a flow that never changes)."""
    rng = np.random.default_rng(seed)
    vibration, rpm = rng.normal(1.0, 0.4, n), rng.normal(1500, 50, n)
    litres = np.full(n, constant) if constant is not None else rpm / 10 - 5 * vibration
    return pd.DataFrame({"vibration": vibration, "rpm": rpm, "litres": litres})


def choice(metric: str) -> Choice:
    """A choice selecting on `metric`, whatever the task it belongs to."""
    higher = {metric: up for task in training.METRICS.values() for metric, up in task.items()}
    return Choice(models=["lr"], metric=metric, higher_is_better=higher[metric])


# --- Data that cannot give a meaningful result is refused, with counts and needs ---


def test_training_rows_of_a_single_class_are_refused_with_the_counts():
    with pytest.raises(errors.InvalidInput) as refused:
        training.check_data(PUMPS, pumps({"ok": 200}), pumps({"ok": 30, "fault": 10}), fold=3)

    assert "single class of state: {'ok': 200}" in refused.value.detail
    assert "at least 2 classes, each with at least 6 rows" in refused.value.detail


def test_a_class_too_small_to_cross_validate_is_refused_with_the_counts():
    holdout = pumps({"ok": 30, "fault": 10})
    with pytest.raises(errors.InvalidInput) as refused:
        training.check_data(PUMPS, pumps({"ok": 199, "fault": 1}), holdout, fold=3)

    detail = refused.value.detail
    assert "class 'fault' of state" in detail
    assert "class counts {'fault': 1, 'ok': 199}" in detail
    assert "every class needs at least 6 rows (PyCaret keeps 30%" in detail


def test_a_class_too_small_for_smote_is_refused_before_the_job():
    # imbalanced-learn#572: SMOTE's 5 neighbours need 6 rows of the class in every fold it
    # balances; 7 rare rows of 400 passed the plain check and failed inside the job.
    holdout = pumps({"ok": 30, "fault": 10})
    rare = pumps({"ok": 393, "fault": 7})
    training.check_data(PUMPS, rare, holdout, fold=3)  # fine without SMOTE
    with pytest.raises(errors.InvalidInput) as refused:
        training.check_data(PUMPS, rare, holdout, fold=3, fix_imbalance=True)
    needed = training.min_rows_per_class(3, fix_imbalance=True)
    assert f"every class needs at least {needed} rows" in refused.value.detail
    assert "SMOTE needs 6 rows of each class" in refused.value.detail
    training.check_data(PUMPS, pumps({"ok": 400, "fault": needed}), holdout, fold=3,
                        fix_imbalance=True)  # fmt: skip


@pytest.mark.slow
def test_the_smote_minimum_is_enough_for_pycaret():
    needed = training.min_rows_per_class(3, fix_imbalance=True)
    frame = pumps({"ok": 300, "fault": needed})
    setup = modeling.experiment(PUMPS, frame, fold=3, setup_options={"fix_imbalance": True})
    pipeline, _ = modeling.best_model(setup, PUMPS.task, include=["lr"], fold=3)
    assert pipeline.predict(frame[PUMPS.feature_names]).shape == (len(frame),)


@pytest.mark.parametrize("fold", [2, 3, 5])
def test_each_class_needs_twice_the_folds(fold):
    needed, holdout = training.min_rows_per_class(fold), pumps({"ok": 30, "fault": 10})
    assert needed == 2 * fold

    training.check_data(PUMPS, pumps({"ok": 150, "fault": needed}), holdout, fold=fold)
    with pytest.raises(errors.InvalidInput, match=f"at least {needed} rows"):
        training.check_data(PUMPS, pumps({"ok": 150, "fault": needed - 1}), holdout, fold=fold)


def test_held_out_rows_of_a_single_class_are_refused_with_the_counts():
    with pytest.raises(errors.InvalidInput) as refused:
        training.check_data(PUMPS, pumps({"ok": 150, "fault": 50}), pumps({"ok": 40}), fold=3)

    assert "held-out rows" in refused.value.detail
    assert "single class of state: {'ok': 40}" in refused.value.detail
    assert "at least 2 classes" in refused.value.detail


def test_class_names_of_any_type_are_counted_by_name():
    labels = pd.Series([True] * 7 + [False] * 3)
    assert training.class_counts(labels) == {"False": 3, "True": 7}


def test_a_regression_target_that_never_varies_is_refused():
    with pytest.raises(errors.InvalidInput, match=r"litres is 7\.0 in all 150 rows"):
        training.check_data(FLOW, flows(150, constant=7.0), flows(30), fold=3)

    training.check_data(FLOW, flows(150), flows(30, constant=7.0), fold=3)  # R2 alone is None


def test_empty_held_out_rows_are_refused():
    with pytest.raises(errors.InvalidInput, match=r"held-out rows .* are empty"):
        training.check_data(FLOW, flows(150), flows(0), fold=3)


def test_retrain_refuses_such_data_before_any_training():
    stages: list[str] = []

    with pytest.raises(errors.InvalidInput, match="single class"):
        training.retrain(
            PUMPS,
            pumps({"ok": 200}),
            pumps({"ok": 30, "fault": 10}),
            champion=None,
            choice=choice("Accuracy"),
            fold=3,
            n_jobs=1,
            budget_seconds=None,
            progress=lambda stage, _: stages.append(stage),
        )

    assert stages == []


@pytest.mark.slow
@pytest.mark.parametrize("fold", [2, 3])
def test_twice_the_folds_is_enough_for_pycaret_to_cross_validate_every_class(fold):
    # Given the smallest minority class the rule lets through...
    frame = pumps({"ok": 194, "fault": training.min_rows_per_class(fold)})

    setup = modeling.experiment(PUMPS, frame, fold=fold)
    _, board = modeling.best_model(setup, Task.classification, include=["lr", "dt"], fold=fold)

    # ...every fold of PyCaret's cross-validation held both classes: AUC is defined.
    assert len(board) == 2
    assert all(0.5 < auc <= 1 for auc in board["AUC"]), board


# --- Scoring: what cannot be computed is None, with the reason ---


@pytest.fixture(scope="module")
def flow_setup():
    """A small PyCaret regression experiment and a linear model trained in it."""
    setup = modeling.experiment(FLOW, flows(120), fold=2)
    model, _ = modeling.best_model(setup, Task.regression, include=["lr"], fold=2)
    return setup, model


class Broken:
    """A champion that loaded but cannot predict."""

    def predict(self, features: pd.DataFrame) -> None:
        raise RuntimeError("the model's feature names do not match")


@pytest.mark.slow
def test_r2_of_a_constant_held_out_target_is_none_with_the_reason(flow_setup):
    setup, model = flow_setup

    scores = training.score(setup, model, flows(30, constant=7.0), FLOW)

    assert scores.results["R2"] is None
    assert scores.missing == {"R2": "undefined: the held-out target is constant"}
    assert scores.results["MAE"] is not None and math.isfinite(scores.results["MAE"])


@pytest.mark.slow
def test_a_champion_that_cannot_predict_or_load_is_unscored_with_the_reason(flow_setup):
    setup, _ = flow_setup

    broken = training.score_champion(setup, Champion("flow:1", Broken()), flows(30), FLOW)
    unloaded = training.score_champion(
        setup, Champion("flow:1", None, "could not be loaded: bad pickle"), flows(30), FLOW
    )

    assert "could not predict the held-out rows" in str(broken.error)
    assert "feature names do not match" in str(broken.error)
    assert unloaded.error == "could not be loaded: bad pickle"
    for scores in (broken, unloaded):
        assert scores.results["Model"] == "flow:1"
        assert all(scores.results[m] is None for m in training.METRICS[Task.regression])


# --- The promotion margin, for every metric, on both sides ---

# Champion values each metric can take: errors are never negative, R2, Kappa and MCC can
# be, and every metric can be 0.
CHAMPIONS = {
    "MAE": [10.0, 0.25, 0.0],
    "MSE": [120.5, 0.0],
    "RMSE": [11.0, 0.0],
    "RMSLE": [0.08, 0.0],
    "MAPE": [0.12, 0.0],
    "R2": [0.8, -0.5, 0.0],
    "Accuracy": [0.8, 0.0],
    "AUC": [0.8, 0.5, 0.0],
    "Recall": [0.8, 0.0],
    "Prec.": [0.8, 0.0],
    "F1": [0.8, 0.0],
    "Kappa": [0.4, -0.2, 0.0],
    "MCC": [0.4, -0.2, 0.0],
    "Precision": [0.6, 0.0],  # anomaly flags
}
STEP = Decimal("0.0001")  # metrics are rounded to 4 places: the smallest visible change
CASES = [
    (metric, champion, margin)
    for metric, champions in CHAMPIONS.items()
    for champion in champions
    for margin in (0.0, 0.01, 0.1)
]


def test_every_metric_has_margin_cases():
    every = {m for task in training.METRICS.values() for m in task}
    assert set(CHAMPIONS) == every


def shifted(value: Decimal, *, better: bool, higher: bool) -> float:
    """`value` moved one visible step towards better or worse."""
    up = better == higher
    return float(value + STEP if up else value - STEP)


@pytest.mark.parametrize(("metric", "champion", "margin"), CASES)
def test_a_challenger_is_promoted_exactly_from_the_margin_on(metric, champion, margin):
    pick = choice(metric)
    old = Decimal(repr(champion))
    needed = Decimal(repr(margin)) * abs(old)
    at_margin = old + needed if pick.higher_is_better else old - needed

    if needed > 0:  # a relative margin of a zero champion asks nothing
        assert training.better(pick, float(at_margin), champion, margin)
        short = shifted(at_margin, better=False, higher=pick.higher_is_better)
        assert not training.better(pick, short, champion, margin)
    # Strictly better is always needed: a tie never wins, whatever the margin.
    assert not training.better(pick, champion, champion, margin)
    worse = shifted(old, better=False, higher=pick.higher_is_better)
    assert not training.better(pick, worse, champion, margin)
    if champion == 0 and pick.higher_is_better:
        assert training.better(pick, float(STEP), champion, margin)


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "margin", "wins"),
    [
        ("R2", -0.45, -0.5, 0.1, True),  # -0.5 -> -0.45 is 10% of |-0.5| better
        ("R2", -0.4501, -0.5, 0.1, False),
        ("R2", -0.55, -0.5, 0.1, False),  # (1 + margin) x champion would call this better
        ("Kappa", -0.198, -0.2, 0.01, True),
        ("Kappa", -0.1981, -0.2, 0.01, False),
        ("MCC", 0.0001, 0.0, 0.5, True),
        ("MAE", 0.0, 0.0, 0.0, False),  # nothing beats a perfect error
        # Exactly at the margin, where float arithmetic rounds the wrong way:
        ("Accuracy", 0.84, 0.8, 0.05, True),  # 0.8 + 0.05 x 0.8 is 0.8400000000000001
        ("F1", 0.11, 0.1, 0.1, True),
        ("MAE", 0.665, 0.7, 0.05, True),
    ],
)
def test_negative_zero_and_float_boundary_champions(metric, challenger, champion, margin, wins):
    assert training.better(choice(metric), challenger, champion, margin) is wins


def decimal_rule(higher: bool, challenger: float, champion: float, margin: float) -> bool:
    """The rule in decimal arithmetic, precise enough to be exact for any two doubles:
    promote iff strictly better, by at least margin x |champion|."""
    with localcontext() as context:
        context.prec, context.Emax, context.Emin = 2000, 10**6, -(10**6)
        new, old, step = (Decimal(repr(v)) for v in (challenger, champion, margin))
        gain = new - old if higher else old - new
        return gain > 0 and gain >= step * abs(old)


finite = st.floats(allow_nan=False, allow_infinity=False)
margins = st.floats(min_value=0.0, max_value=1.0)
metrics = st.sampled_from(sorted(CHAMPIONS))


@given(metric=metrics, challenger=finite, champion=finite, margin=margins)
@example(metric="Accuracy", challenger=0.84, champion=0.8, margin=0.05)
@example(metric="MAE", challenger=0.665, champion=0.7, margin=0.05)
@example(metric="R2", challenger=-0.55, champion=-0.5, margin=0.1)
def test_promote_iff_strictly_better_by_at_least_the_margin(metric, challenger, champion, margin):
    pick = choice(metric)
    wins = training.better(pick, challenger, champion, margin)

    assert wins is decimal_rule(pick.higher_is_better, challenger, champion, margin)
    assert not (wins and training.better(pick, champion, challenger, margin))  # one way only
    if wins:  # a smaller margin never turns a win into a loss
        assert training.better(pick, challenger, champion, margin / 2)


@given(
    metric=metrics,
    value=finite,
    missing=st.sampled_from([None, math.nan, math.inf, -math.inf]),
    margin=margins,
)
def test_a_missing_or_non_finite_value_never_wins(metric, value, missing, margin):
    pick = choice(metric)
    assert not training.better(pick, missing, value, margin)
    assert not training.better(pick, value, missing, margin)


# --- Auto-promotion never goes ahead on a missing comparison ---


def block(**metrics: float | None) -> dict[str, Any]:
    """A classification result block with these metrics, the others at 0.7."""
    others: dict[str, Any] = dict.fromkeys(training.METRICS[Task.classification], 0.7)
    return {"Model": "Logistic Regression"} | others | metrics


def decide(metric: str, challenger: Scores, champion: Scores | None) -> dict:
    return training.decide(
        choice(metric),
        challenger=challenger,
        champion=champion,
        champion_label=None if champion is None else "pumps:1",
        margin=0.01,
    )


def test_a_service_without_any_champion_gets_the_challenger_as_its_first_model():
    decision = decide("AUC", Scores(block(AUC=0.81)), None)

    assert (decision["promoted"], decision["basis"]) == (True, "no_champion")
    assert "first model" in decision["reason"] and "AUC is 0.81" in decision["reason"]


def test_a_champion_metric_that_could_not_be_computed_is_no_comparison():
    why = "AttributeError: 'RidgeClassifier' object has no attribute 'predict_proba'"
    champion = Scores(block(AUC=None), missing={"AUC": why})

    decision = decide("AUC", Scores(block(AUC=0.81)), champion)

    assert (decision["promoted"], decision["basis"]) == (False, "champion_unscored")
    assert "champion pumps:1's AUC could not be computed" in decision["reason"]
    assert "predict_proba" in decision["reason"] and "by hand" in decision["reason"]


def test_a_champion_that_failed_to_load_or_predict_is_no_comparison():
    champion = Scores(
        block(**dict.fromkeys(training.METRICS[Task.classification])),
        error="could not be loaded: UnpicklingError: invalid load key",
    )

    decision = decide("F1", Scores(block(F1=0.99)), champion)

    assert (decision["promoted"], decision["basis"]) == (False, "champion_unscored")
    assert "could not be loaded: UnpicklingError" in decision["reason"]


@pytest.mark.parametrize("champion", [None, Scores(block(MCC=-0.3))])
def test_a_challenger_metric_that_could_not_be_computed_is_never_promoted(champion):
    challenger = Scores(block(MCC=None), missing={"MCC": "not a finite number (nan)"})

    decision = decide("MCC", challenger, champion)

    assert (decision["promoted"], decision["basis"]) == (False, "challenger_unscored")
    assert (
        "challenger's MCC could not be computed (not a finite number (nan))" in (decision["reason"])
    )


@pytest.mark.parametrize(
    ("challenger", "champion", "promoted", "verb"),
    [(-0.1, -0.2, True, "beats"), (-0.199, -0.2, False, "does not beat")],
)
def test_two_scored_models_are_compared_by_the_margin(challenger, champion, promoted, verb):
    decision = decide("Kappa", Scores(block(Kappa=challenger)), Scores(block(Kappa=champion)))

    assert (decision["promoted"], decision["basis"]) == (promoted, "compared")
    assert decision["reason"] == (
        f"challenger Kappa {challenger} {verb} champion {champion} by the 1% margin"
    )
