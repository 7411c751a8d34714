"""Kernel SHAP for many rows at once: exact where every coalition fits, adding up to the
model's output, and bounded in time."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pandas as pd

from retraining_api import explainer_kernel
from retraining_api.explainer_kernel import KernelSize

COLUMNS = ["a", "b", "c", "d"]


def readings(n: int, *, seed: int, columns: list[str] = COLUMNS) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).normal(size=(n, len(columns))), columns=columns)


def interacting(frame: pd.DataFrame) -> np.ndarray:
    """A model with two outputs and interactions between features."""
    return np.c_[np.sin(frame.a) * frame.b + frame.c**2, frame.d * frame.a]


def exact_shapley(row: np.ndarray, centres: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    """Shapley values by their definition, over every coalition (features x outputs)."""
    features = len(row)

    def value(coalition: tuple[int, ...]) -> np.ndarray:
        synthetic = centres.to_numpy().copy()
        synthetic[:, list(coalition)] = row[list(coalition)]
        return weights @ interacting(pd.DataFrame(synthetic, columns=COLUMNS))

    phi = np.zeros((features, 2))
    for i in range(features):
        others = [j for j in range(features) if j != i]
        for size in range(features):
            share = math.factorial(size) * math.factorial(features - size - 1)
            for coalition in itertools.combinations(others, size):
                gain = value((*coalition, i)) - value(coalition)
                phi[i] += share / math.factorial(features) * gain
    return phi


def test_with_room_for_every_coalition_the_values_are_exact_shapley_values():
    rows = readings(12, seed=1)
    centres, weights = explainer_kernel.summarise(readings(300, seed=0), 5)

    found = explainer_kernel.shap_values(
        interacting, rows, centres, weights, coalitions=100, seed=1
    )

    expected = np.stack([exact_shapley(r, centres, weights) for r in rows.to_numpy()])
    np.testing.assert_allclose(found.values, expected, atol=1e-9)
    # and they add up to the model's output, less its mean over the background
    np.testing.assert_allclose(found.base + found.values.sum(axis=1), interacting(rows))
    np.testing.assert_allclose(found.outputs, interacting(rows))


def test_a_linear_model_gets_its_exact_values_from_a_few_coalitions():
    # Given 17 features, far more coalitions (2^17) than the 36 drawn
    columns = [f"x{i}" for i in range(17)]
    coef = np.linspace(-2, 2, 17)
    rows = readings(30, seed=2, columns=columns)
    centres, weights = explainer_kernel.summarise(readings(400, seed=3, columns=columns), 3)

    found = explainer_kernel.shap_values(
        lambda frame: frame.to_numpy() @ coef, rows, centres, weights, coalitions=36, seed=0
    )

    # a linear model's Shapley value is coef_i * (x_i - mean of the background's x_i)
    expected = coef * (rows.to_numpy() - weights @ centres.to_numpy())
    np.testing.assert_allclose(found.values[:, :, 0], expected, atol=1e-8)


def test_coalitions_enumerate_single_features_and_their_complements_first():
    masks, weights = explainer_kernel.draw_coalitions(17, 36, seed=0)

    sizes = masks.sum(axis=1)
    assert len(masks) == 36 and set(sizes[:34]) == {1, 16}
    assert abs(weights.sum() - 1) < 1e-12
    assert KernelSize(10, 100).for_features(3) == KernelSize(10, 6)  # 2^3 - 2: all of them
    assert KernelSize(1, 10).for_features(17).coalitions == 36  # at least 2M + 2
    assert "all 6 feature coalitions" in KernelSize(10, 6).describe(3)


def test_past_the_deadline_no_further_chunk_is_started():
    rows = readings(3000, seed=4)
    centres, weights = explainer_kernel.summarise(rows, 10)

    def slow(frame: pd.DataFrame) -> np.ndarray:
        time.sleep(0.05)
        return interacting(frame)

    found = explainer_kernel.shap_values(
        slow, rows, centres, weights, coalitions=14, seed=0, deadline=time.perf_counter()
    )

    # one chunk: CHUNK_ROWS model rows, 14 coalitions x 10 centres per explained row
    assert len(found.values) == explainer_kernel.CHUNK_ROWS // 140
    assert len(found.outputs) == len(found.values)
