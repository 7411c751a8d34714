"""The demo generator: same seed same data, plausible values, and a drift knob."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from gits_ml.demo import FEATURES, PRODUCT_QUALITY, TARGET, DemoConfig, generate

SMALL = DemoConfig(history_hours=1500, production_minutes=6000)


@pytest.fixture(scope="module")
def demo():
    return generate(SMALL)


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(demo):
    again = generate(SMALL)
    other = generate(DemoConfig(seed=8, history_hours=1500, production_minutes=6000))
    for split in ("training", "testing", "production", "ground_truth"):
        pd.testing.assert_frame_equal(getattr(demo, split), getattr(again, split))
    assert not np.allclose(demo.training[FEATURES], other.training[FEATURES])
    assert not set(demo.production.message_id) & set(other.production.message_id)


def test_splits_have_the_use_case_columns_and_plausible_values(demo):
    columns = ["message_id", PRODUCT_QUALITY.time_column, *PRODUCT_QUALITY.feature_names, TARGET]
    assert list(demo.training.columns) == columns
    assert len(demo.testing) == round(1500 * SMALL.test_fraction)
    assert TARGET not in demo.production.columns
    assert demo.training[TARGET].between(220, 505).all()
    assert demo.training[TARGET].std() > 25  # a label worth predicting
    assert demo.training["T_data_3_2"].mean() == pytest.approx(480, abs=15)
    assert demo.production.timestamp.diff().dropna().eq(pd.Timedelta(minutes=1)).all()
    assert demo.training.timestamp.max() < demo.testing.timestamp.min()
    assert demo.testing.timestamp.max() < demo.production.timestamp.min()


def test_quality_is_learnable_from_the_sensors(demo):
    model = LinearRegression().fit(demo.training[FEATURES], demo.training[TARGET])
    assert model.score(demo.testing[FEATURES], demo.testing[TARGET]) > 0.8


def test_ground_truth_labels_production_rows_about_hourly_and_late(demo):
    truth = demo.ground_truth
    production = demo.production.set_index("message_id")
    assert set(truth.message_id) <= set(production.index)
    assert len(truth) == pytest.approx(len(demo.production) / 60, rel=0.05)
    delay = truth.available_at - truth.timestamp
    assert (delay == pd.Timedelta(minutes=SMALL.ground_truth_delay_minutes)).all()
    same = production.loc[truth.message_id, FEATURES].to_numpy()
    assert np.array_equal(same, truth[FEATURES].to_numpy())


def test_the_drift_knob_shifts_one_chamber_from_the_given_minute(demo):
    drifted = generate(
        DemoConfig(
            history_hours=1500,
            production_minutes=6000,
            drift_after_minute=3000,
            drift_chamber=3,
            drift_shift=40.0,
        )
    )
    delta = drifted.production[FEATURES] - demo.production[FEATURES]
    assert (delta.iloc[:3000] == 0).all().all()
    assert np.allclose(delta.iloc[3000:][["T_data_3_1", "T_data_3_2", "T_data_3_3"]], 40.0)
    assert (
        (delta.iloc[3000:].drop(columns=["T_data_3_1", "T_data_3_2", "T_data_3_3"]) == 0)
        .all()
        .all()
    )
    pd.testing.assert_frame_equal(
        drifted.training.drop(columns="message_id"), demo.training.drop(columns="message_id")
    )


def test_the_history_keeps_its_ids_whatever_the_production_knobs(demo):
    drifted = generate(
        DemoConfig(
            history_hours=1500,
            production_minutes=6000,
            drift_after_minute=10,
            ground_truth_every_minutes=5,
        )
    )
    assert list(drifted.training.message_id) == list(demo.training.message_id)
    assert not set(drifted.production.message_id) & set(demo.production.message_id)


def test_the_ground_truth_cadence_is_a_knob():
    every_5 = generate(
        DemoConfig(history_hours=100, production_minutes=3000, ground_truth_every_minutes=5)
    )
    assert len(every_5.ground_truth) == pytest.approx(3000 / 5, rel=0.05)
