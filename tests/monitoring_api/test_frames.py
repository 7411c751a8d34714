"""Rows read back from ml_data_api keep their declared types: a property over every label
type, any values and any pattern of not-yet-labelled rows (no service needed)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gits_common.schemas import Column, ColumnType, Task, UseCase
from monitoring_api import performance
from monitoring_api.frames import PREDICTION, kinds, labelled, to_frame, typed

# Values of each type as ml_data_api stores them (ints are 64-bit, floats finite, texts
# without NUL or unpaired surrogates).
STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
VALUES: dict[ColumnType, st.SearchStrategy[Any]] = {
    ColumnType.int: st.integers(-(2**63), 2**63 - 1),
    ColumnType.bool: st.booleans(),
    ColumnType.text: st.one_of(
        st.sampled_from(["1", "1.0", "0", "True", "nan", "None", ""]),
        st.text(alphabet=STORABLE, max_size=8),
    ),
    ColumnType.float: st.floats(allow_nan=False, allow_infinity=False),
}


def use_case(target: ColumnType) -> UseCase:
    return UseCase(
        name="typed",
        task=Task.classification,
        features=[Column(name="x")],
        target=Column(name="y", type=target),
        time_column="ts",
    )


@st.composite
def windows(draw: st.DrawFn) -> tuple[UseCase, list[Any], list[Any], list[bool]]:
    """A use case with a target of some type, the true labels and predictions of a
    window, and which rows are labelled yet."""
    target = draw(st.sampled_from(list(VALUES)))
    size = draw(st.integers(1, 30))
    truth = draw(st.lists(VALUES[target], min_size=size, max_size=size))
    # Predictions are often right: drawn from the truth, or any value of the type.
    predicted = [draw(st.one_of(st.just(t), VALUES[target])) for t in truth]
    known = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    return use_case(target), truth, predicted, known


def as_read(use_case: UseCase, truth: list[Any], predicted: list[Any], known: list[bool]):
    """The rows as ml_data_api answers them: JSON, null where no label arrived yet."""
    rows = [
        {
            "ts": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
            "x": float(i),
            "y": t if k else None,
            PREDICTION: p,
        }
        for i, (t, p, k) in enumerate(zip(truth, predicted, known, strict=True))
    ]
    return to_frame(use_case, json.loads(json.dumps(rows)))


@settings(max_examples=150, deadline=None)
@given(windows())
def test_labels_read_back_are_the_values_written_of_their_type(window):
    use_case, truth, predicted, known = window

    frame = as_read(use_case, truth, predicted, known)

    expected = [t if k else None for t, k in zip(truth, known, strict=True)]
    for read, written in zip(frame["y"].tolist(), expected, strict=True):
        assert type(read) is type(written) and read == written
    for read, written in zip(frame[PREDICTION].tolist(), predicted, strict=True):
        assert type(read) is type(written) and read == written


@settings(max_examples=150, deadline=None)
@given(windows())
def test_accuracy_counts_a_label_right_exactly_when_it_equals_the_prediction(window):
    use_case, truth, predicted, known = window
    if not any(known):
        return

    scored = labelled(use_case, as_read(use_case, truth, predicted, known))
    measured = performance.classification(scored["y"], scored[PREDICTION])

    pairs = [(t, p) for t, p, k in zip(truth, predicted, known, strict=True) if k]
    expected = sum(t == p for t, p in pairs) / len(pairs)
    assert measured["accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("column_type", "value"),
    [
        (ColumnType.int, True),  # a boolean is no int
        (ColumnType.int, 1.5),
        (ColumnType.bool, 1),
        (ColumnType.text, 1),  # the model of a text target predicting numbers
        (ColumnType.float, "1.0"),
    ],
)
def test_a_value_not_of_its_type_is_refused_not_converted(column_type, value):
    kind = kinds(use_case(column_type))["y"]

    with pytest.raises(ValueError, match=f"is not a value of type {column_type.value}"):
        typed(pd.Series([value], dtype=object), kind)


def test_an_anomaly_use_case_predicts_ints():
    anomalies = UseCase(name="a", task=Task.anomaly, features=[Column(name="x")])

    assert kinds(anomalies)[PREDICTION].type is ColumnType.int
