"""The demo use cases of gits_ml.demos: deterministic, of their task's shape, and for the
anomaly demo, labels that are exactly the injected anomalies; and the anomaly threshold
chosen on labelled rows (gits_ml.modeling.choose_threshold) is the best F1 there is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gits_common.schemas import Table, Task
from gits_ml import modeling
from gits_ml.demo import DemoConfig
from gits_ml.demos import (
    ANOMALY_KINDS,
    ANOMALY_MINUTES,
    DEMOS,
    IN_SPEC,
    OFF_SPEC,
    PUMP_FEATURES,
    AnomalyDemoData,
)

SMALL = DemoConfig(history_hours=1500, production_minutes=3000)


@pytest.mark.parametrize("name", list(DEMOS))
def test_each_demo_is_deterministic_and_fits_its_use_case(name):
    demo = DEMOS[name]
    first, again = demo.generate(SMALL), demo.generate(SMALL)
    for split in ("training", "testing", "production", "ground_truth"):
        pd.testing.assert_frame_equal(getattr(first, split), getattr(again, split))
    use_case = demo.use_case
    for split in (first.training, first.testing):
        assert {*use_case.feature_names, demo.target, "message_id"} <= set(split.columns)
        assert split[demo.target].notna().all()
    assert demo.target not in first.production.columns
    ids = pd.concat([first.training, first.testing, first.production])["message_id"]
    assert ids.is_unique
    assert set(first.ground_truth["message_id"]) <= set(first.production["message_id"])
    # No two demos share an id: one collector's labels never land on another's rows.
    others = [DEMOS[n].generate(SMALL).production["message_id"] for n in DEMOS if n != name]
    assert not set(first.production["message_id"]) & set(pd.concat(others))


def test_quality_class_is_imbalanced_with_few_off_spec_products():
    data = DEMOS["quality_class"].generate(DemoConfig())
    share = (data.training["grade"] == OFF_SPEC).mean()
    assert set(data.training["grade"]) == {IN_SPEC, OFF_SPEC}
    assert 0.05 <= share <= 0.2
    assert DEMOS["quality_class"].use_case.task is Task.classification


def test_the_anomaly_labels_are_exactly_the_injected_anomalies():
    data = DEMOS["sensor_anomaly"].generate(SMALL)
    assert isinstance(data, AnomalyDemoData)
    assert set(data.events["kind"]) == set(ANOMALY_KINDS)
    assert list(data.production.columns) == ["message_id", "timestamp", *PUMP_FEATURES]
    splits = {"training": data.training, "testing": data.testing, "production": data.ground_truth}
    for split, frame in splits.items():
        events = data.events[data.events["split"] == split]
        # The history's events count rows of the whole history: testing's follow training's.
        offset = len(data.training) if split == "testing" else 0
        marked = np.zeros(len(frame), dtype=int)
        for e in events.itertuples():
            high = ANOMALY_MINUTES[e.kind][1]
            first, last = e.first_row - offset, e.last_row - offset
            assert last - first + 1 <= high
            assert e.first_id == frame["message_id"].iat[first]
            assert marked[first : last + 1].sum() == 0  # never overlapping
            marked[first : last + 1] = 1
        assert (frame["anomaly"].to_numpy() == marked).all()
    stuck = data.events[(data.events["kind"] == "stuck") & (data.events["split"] == "production")]
    for e in stuck.itertuples():
        assert data.production[e.sensor].iloc[e.first_row : e.last_row + 1].nunique() == 1


def test_the_demo_anomaly_model_flags_most_injected_anomalies():
    data = DEMOS["sensor_anomaly"].generate(SMALL)
    use_case = DEMOS["sensor_anomaly"].use_case
    pipeline, board = modeling.train(use_case, data.training, evaluation=data.testing)
    assert list(board.index) == sorted(board.index, key=lambda m: -board.loc[m, "F1"])
    flags = np.asarray(pipeline.predict(data.production[use_case.feature_names]))
    truth = data.ground_truth["anomaly"].to_numpy()
    assert (flags * truth).sum() / flags.sum() >= 0.8  # precision
    assert (flags * truth).sum() / truth.sum() >= 0.6  # minute recall
    assert modeling.anomaly_threshold(pipeline) == pytest.approx(board["threshold"].iloc[0])
    # The threshold is part of the model file: a worker loading it flags the same.
    loaded = modeling.from_bytes(modeling.to_bytes(pipeline))
    predicted = modeling.predict(
        loaded,
        data.production[use_case.feature_names],
        task=Task.anomaly,
        label_type=use_case.target.type,
    )
    assert predicted.labels == flags.astype(int).tolist()
    scores = np.asarray(predicted.scores)
    assert ((scores > modeling.anomaly_threshold(loaded)) == flags.astype(bool)).all()


def test_the_demo_classifier_keeps_the_minority_class_and_loads_as_a_model_file():
    demo = DEMOS["quality_class"]
    data = demo.generate(SMALL)
    pipeline, _ = modeling.train(
        demo.use_case, data.training, include=["lr"], setup_options={"fix_imbalance": True}
    )
    loaded = modeling.from_bytes(modeling.to_bytes(pipeline))
    predicted = modeling.predict(
        loaded,
        data.testing[demo.use_case.feature_names],
        task=Task.classification,
        label_type=demo.use_case.target.type,
    )
    assert set(predicted.labels) == {IN_SPEC, OFF_SPEC}
    classes, matrix = modeling.class_probabilities(
        loaded, data.testing[demo.use_case.feature_names]
    )
    assert classes == [IN_SPEC, OFF_SPEC]
    assert np.allclose(matrix.max(axis=1), predicted.scores)


def test_splits_load_as_the_loader_loads_them():
    from ml_data_loader.loader import demo_splits

    splits = demo_splits(7, "sensor_anomaly")
    assert set(splits) == {Table.training, Table.testing}
    assert splits[Table.training]["anomaly"].isin([0, 1]).all()


def best_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    """The best F1 of flagging every score above some cut, by trying every cut."""
    best = 0.0
    for cut in np.unique(np.concatenate([scores, [scores.min() - 1]])):
        flags = scores > cut
        tp = (flags & (labels == 1)).sum()
        if tp:
            p, r = tp / flags.sum(), tp / (labels == 1).sum()
            best = max(best, 2 * p * r / (p + r))
    return float(best)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6, allow_nan=False, width=32), st.integers(0, 1)),
        min_size=2,
        max_size=60,
    ).filter(lambda rows: len({label for _, label in rows}) == 2)
)
def test_the_chosen_threshold_gives_the_best_f1_on_the_rows_it_was_chosen_on(rows):
    scores = np.array([s for s, _ in rows], dtype=float)
    labels = np.array([label for _, label in rows])
    choice = modeling.choose_threshold(scores, labels)
    flags = scores > choice.threshold
    tp = (flags & (labels == 1)).sum()
    f1 = 2 * tp / (flags.sum() + (labels == 1).sum())
    assert f1 == pytest.approx(choice.f1)
    assert choice.f1 == pytest.approx(best_f1(scores, labels))


def test_a_threshold_needs_both_kinds_of_rows():
    with pytest.raises(ValueError, match="normal rows and anomalies"):
        modeling.choose_threshold(np.array([1.0, 2.0]), np.array([0, 0]))
