"""Retraining for each task as plain functions on small synthetic use cases: tuning with
Optuna and early stopping, ensembles, class imbalance handled by SMOTE, anomaly models
with a threshold chosen on one part of the held-out rows and F1 scored on the other, and
the refusals that name the request field at fault."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gits_common import errors
from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml import modeling
from retraining_api import training
from retraining_api.jobs import choose
from retraining_api.settings import load_settings
from retraining_api.training import Champion

FEATURES = ["vibration", "temperature", "current"]
FLOW = UseCase(
    name="flow",
    task=Task.regression,
    features=[Column(name=f) for f in FEATURES],
    target=Column(name="litres"),
)
QUALITY = UseCase(
    name="quality",
    task=Task.classification,
    features=[Column(name=f) for f in FEATURES],
    target=Column(name="grade", type=ColumnType.text),
)
SENSORS = UseCase(
    name="sensors",
    task=Task.anomaly,
    features=[Column(name=f) for f in FEATURES],
    target=Column(name="anomaly", type=ColumnType.int),
)
TUNE = {"trials": 4, "time_budget_seconds": 60.0, "early_stopping_trials": 10}


def readings(n: int, *, seed: int) -> pd.DataFrame:
    """n sensor readings: vibration in mm/s, temperature in °C, motor current in A."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "vibration": rng.normal(2.0, 0.5, n),
            "temperature": rng.normal(60.0, 5.0, n),
            "current": rng.normal(10.0, 1.0, n),
        }
    )


def flows(n: int, *, seed: int) -> pd.DataFrame:
    """Readings and the litres pumped, which fall with vibration and rise with current."""
    frame = readings(n, seed=seed)
    noise = np.random.default_rng(seed + 100).normal(0, 0.5, n)
    return frame.assign(litres=50 - 4 * frame.vibration + 2 * frame.current + noise)


def grades(n: int, *, seed: int) -> pd.DataFrame:
    """Readings graded "off_spec" when hot and vibrating (about 10% of them)."""
    frame = readings(n, seed=seed)
    risk = (frame.vibration - 2.0) / 0.5 + (frame.temperature - 60.0) / 5.0
    return frame.assign(grade=np.where(risk > 1.8, "off_spec", "in_spec"))


def sensors(n: int, *, seed: int, every: int = 20) -> pd.DataFrame:
    """Readings with a known anomaly (label 1) every `every` rows: a vibration spike."""
    frame = readings(n, seed=seed)
    label = (np.arange(n) % every == every // 2).astype(int)
    frame.loc[label == 1, "vibration"] += 6.0
    return frame.assign(anomaly=label)


def pick(task: Task, **request) -> training.Choice:
    """The choice a job makes of a request (RetrainingCreate as JSON)."""
    return choose(request, _use_case(task), load_settings())


def _use_case(task: Task) -> UseCase:
    return {Task.regression: FLOW, Task.classification: QUALITY, Task.anomaly: SENSORS}[task]


def retrain(use_case: UseCase, training_rows, holdout, choice, **options) -> training.Outcome:
    return training.retrain(
        use_case,
        training_rows,
        holdout,
        champion=options.pop("champion", None),
        choice=choice,
        fold=2,
        n_jobs=1,
        budget_seconds=None,
        progress=lambda stage, percent: None,
        **options,
    )


# --- Regression and classification: tuning and ensembles ---


@pytest.mark.slow
def test_regression_is_tuned_then_blended_and_compared_on_r2():
    choice = pick(Task.regression, models=["lr", "dt"], tune=TUNE, ensemble="blend")
    assert (choice.metric, choice.tuning) == ("R2", modeling.Tuning(4, 60.0, 10))

    outcome = retrain(FLOW, flows(200, seed=1), flows(60, seed=2), choice)

    tuning = outcome.details["tuning"]
    assert 1 <= tuning["trials"] <= 4 and tuning["stopped_by"] in ("trials", "early_stopping")
    assert tuning["best_params"] and tuning["kept"] in ("tuned", "untuned")
    assert tuning["seconds"] < 60
    ensemble = outcome.details["ensemble"]
    assert ensemble["method"] == "blend" and len(ensemble["models"]) == 2
    assert type(modeling.final_estimator(outcome.challenger)).__name__ == "VotingRegressor"
    assert outcome.challenger_scores.results["R2"] > 0.8  # the flow is nearly linear


@pytest.mark.slow
def test_tuning_stops_early_after_the_trials_without_improvement():
    early = {"trials": 200, "time_budget_seconds": 120.0, "early_stopping_trials": 2}
    choice = pick(Task.regression, models=["dt"], tune=early, metric="MAE")

    outcome = retrain(FLOW, flows(150, seed=3), flows(40, seed=4), choice)

    tuning = outcome.details["tuning"]
    assert (tuning["early_stopped"], tuning["stopped_by"]) == (True, "early_stopping")
    assert 3 <= tuning["trials"] < 200  # at least the best trial and 2 after it
    assert outcome.details["ensemble"] is None


@pytest.mark.slow
# Tuning is asked with the stack only: each trial refits both models, and tuning before
# either ensemble is one code path (test_regression_is_tuned_then_blended_...).
@pytest.mark.parametrize(
    ("method", "estimator", "tuned"),
    [("stack", "StackingClassifier", True), ("bagging", "BaggingClassifier", False)],
)
def test_imbalanced_classification_is_balanced_tuned_and_combined(method, estimator, tuned):
    # Given about 10% off_spec rows, and F1 (of off_spec) as the metric
    frame = grades(400, seed=5)
    assert 0.05 < (frame.grade == "off_spec").mean() < 0.2
    choice = pick(
        Task.classification,
        models=["lr", "dt"],
        metric="F1",
        tune=TUNE if tuned else None,
        ensemble=method,
        fix_imbalance=True,
    )

    outcome = retrain(QUALITY, frame, grades(150, seed=6), choice)

    # SMOTE is a step of the saved pipeline, and the file loads through the allow-list
    steps = dict(outcome.challenger.steps)
    assert "balance" in steps, list(steps)
    loaded = modeling.from_bytes(modeling.to_bytes(outcome.challenger))
    assert set(loaded.predict(frame[FEATURES])) <= {"in_spec", "off_spec"}
    assert type(modeling.final_estimator(loaded)).__name__ == estimator
    assert (outcome.details["tuning"] is not None) is tuned
    assert outcome.details["ensemble"]["method"] == method
    assert outcome.challenger_scores.results["F1"] > 0.3


# --- Anomaly: threshold on the testing rows, F1 on the newest production rows ---


@pytest.mark.slow
def test_anomaly_models_get_a_threshold_and_are_compared_with_the_champion_on_f1():
    # Given a champion at pyod's default threshold (5% contamination) ...
    training_rows = sensors(400, seed=7).drop(columns=["anomaly"])
    setup = modeling.experiment(SENSORS, training_rows)
    champion_model, _ = modeling.best_model(setup, Task.anomaly, include=["iforest"])
    champion_threshold = modeling.anomaly_threshold(champion_model)
    # ... and held-out rows: 200 testing rows, then 100 labelled production rows
    holdout = pd.concat([sensors(200, seed=8), sensors(100, seed=9)], ignore_index=True)
    choice = pick(Task.anomaly, models=["iforest", "histogram"])

    outcome = retrain(
        SENSORS,
        training_rows,
        holdout,
        choice,
        champion=Champion("sensors:1", champion_model),
        testing_rows=200,
    )

    threshold = outcome.details["threshold"]
    assert threshold["rule"] == training.THRESHOLD_RULE
    assert (threshold["threshold_rows"], threshold["evaluation_rows"]) == (200, 100)
    assert threshold["champion"] == champion_threshold  # the champion keeps its own
    assert threshold["chosen"] == modeling.anomaly_threshold(outcome.challenger)
    assert {row["id"] for row in outcome.leaderboard} == {"iforest", "histogram"}
    assert all(row["Threshold"] is not None for row in outcome.leaderboard)
    challenger = outcome.challenger_scores.results
    assert set(challenger) == {"Model", "F1", "Precision", "Recall"}
    assert challenger["F1"] > 0.5 and challenger["Recall"] >= 0.6  # most spikes are flagged
    assert outcome.champion_scores is not None
    champion = outcome.champion_scores.results
    assert champion["Model"] == "Isolation Forest" and champion["F1"] is not None
    decision = training.decide(
        choice,
        challenger=outcome.challenger_scores,
        champion=outcome.champion_scores,
        champion_label="sensors:1",
        margin=0.0,
    )
    assert decision["basis"] == "compared" and "F1" in decision["reason"]


def test_without_anomalies_in_the_production_rows_the_held_out_rows_are_halved():
    holdout = pd.concat(
        [sensors(200, seed=10), sensors(50, seed=11).assign(anomaly=0)], ignore_index=True
    )

    parts = training.anomaly_parts(SENSORS, holdout, testing_rows=200)

    assert parts.rule == training.HALVES_RULE
    assert (len(parts.threshold), len(parts.evaluation)) == (125, 125)


def test_an_anomaly_use_case_without_a_target_is_refused():
    unlabelled = SENSORS.model_copy(update={"target": None})

    with pytest.raises(errors.InvalidInput, match=r"has no target.*0/1 labels"):
        training.check_data(unlabelled, sensors(100, seed=1), sensors(100, seed=2), fold=3)


def test_held_out_rows_without_any_anomaly_are_refused_with_the_counts():
    calm = sensors(100, seed=12).assign(anomaly=0)

    with pytest.raises(errors.InvalidInput) as refused:
        training.check_data(SENSORS, sensors(100, seed=1), calm, fold=3, testing_rows=60)

    assert "no anomaly or no normal row" in refused.value.detail
    assert "{'0': 50}" in refused.value.detail


def test_anomaly_labels_other_than_0_and_1_are_refused():
    holdout = sensors(100, seed=13).assign(anomaly=2)

    with pytest.raises(errors.InvalidInput, match=r"holds \['2'\].*0 \(normal\) or 1"):
        training.check_data(SENSORS, sensors(100, seed=1), holdout, fold=3)


# --- Each task's metric and options; refusals name the field ---


def test_each_task_selects_on_its_own_default_metric():
    assert pick(Task.regression).metric == "R2"
    assert pick(Task.classification).metric == "Accuracy"
    anomaly = pick(Task.anomaly)
    assert (anomaly.metric, anomaly.higher_is_better) == ("F1", True)
    assert anomaly.models == modeling.FAST_MODELS[Task.anomaly]  # no supervised defaults


@pytest.mark.parametrize(
    ("task", "request_", "field"),
    [
        (Task.regression, {"fix_imbalance": True}, "fix_imbalance: "),
        (Task.anomaly, {"fix_imbalance": True}, "fix_imbalance: "),
        (Task.anomaly, {"tune": TUNE}, "tune: PyCaret 3.3's anomaly experiment has no tune_model"),
        (Task.anomaly, {"ensemble": "blend"}, "ensemble: PyCaret 3.3's anomaly experiment"),
        (Task.regression, {"ensemble": "stack", "models": ["lr"]}, "ensemble: 'stack'"),
        (Task.anomaly, {"models": ["lr"]}, "models: unknown anomaly model ids ['lr']"),
        (Task.anomaly, {"metric": "AUC"}, "metric: unknown anomaly metric 'AUC'"),
    ],
)
def test_an_option_the_task_cannot_have_is_refused_naming_the_field(task, request_, field):
    with pytest.raises(errors.InvalidInput) as refused:
        pick(task, **request_)

    assert refused.value.detail.startswith(field), refused.value.detail
