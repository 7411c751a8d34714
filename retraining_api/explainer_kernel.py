"""Kernel SHAP (Lundberg and Lee 2017, "A unified approach to interpreting model
predictions") for models without a fast SHAP method, computed for many rows at once.

shap's KernelExplainer calls the model once per explained row. Some models pay a fixed
price per call whatever its size (scikit-learn's Gaussian process classifier factorises
its training kernel again on every call: 2 s with 4,000 training rows), so here every
explained row shares one set of feature coalitions, the model sees large batches, and
one weighted least squares solve serves every row and output.

- The background is shap's `kmeans` summary of the rows: `background` weighted centres,
  each rounded to values the rows hold.
- Coalitions follow shap's scheme: the sizes with most Shapley kernel weight (1 and M-1
  features, then 2 and M-2, ...) are enumerated while the budget allows, the rest drawn
  at random in complementary pairs. When every coalition fits, the values are exact
  Shapley values of the background's value function.
- The values add up, row by row, to the model's output minus its mean output over the
  background (the efficiency constraint is solved for, as shap does)."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

# A predict function: n rows (a DataFrame of the features) -> n x outputs.
Predict = Callable[[pd.DataFrame], np.ndarray]

# Model rows per call: large enough that a fixed cost per call is paid a few times,
# small enough that a Gaussian process's kernel matrices stay in memory (~300 MB).
CHUNK_ROWS = 8_000


@dataclass(frozen=True)
class KernelSize:
    """How much kernel SHAP evaluates per explained row: `background` k-means centres
    times `coalitions` feature coalitions model rows."""

    background: int
    coalitions: int

    def for_features(self, features: int) -> KernelSize:
        """This size for `features` features: at least 2M + 2 coalitions (every single
        feature and its complement, plus a pair), at most all 2^M - 2 of them."""
        wanted = max(self.coalitions, 2 * features + 2)
        return KernelSize(self.background, min(wanted, _all_coalitions(features)))

    def describe(self, features: int) -> str:
        """The size in words, for the page."""
        exact = self.coalitions >= _all_coalitions(features)
        coalitions = f"all {self.coalitions}" if exact else str(self.coalitions)
        return (
            f"kernel SHAP on a {self.background}-point k-means background, "
            f"{coalitions} feature coalitions per row"
        )


@dataclass(frozen=True)
class KernelValues:
    """SHAP values of `rows` x features x outputs, their base values (outputs,) and the
    model's outputs on the rows (rows x outputs, a regressor's one column):
    `base + values.sum(axis=1)` is `outputs`."""

    base: np.ndarray
    values: np.ndarray
    outputs: np.ndarray


def summarise(features: pd.DataFrame, size: int) -> tuple[pd.DataFrame, np.ndarray]:
    """shap's k-means summary of the rows: at most `size` centres (a DataFrame with the
    rows' columns, each value one the rows hold) and their weights (summing to 1)."""
    import shap

    size = min(size, len(features.drop_duplicates()))
    summary = shap.kmeans(features, size)
    centres = pd.DataFrame(summary.data, columns=features.columns)
    return centres, np.asarray(summary.weights, dtype=float) / np.sum(summary.weights)


def draw_coalitions(features: int, count: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `count` coalitions of `features` features (a bool array, coalitions x
    features) and their Shapley kernel weights (summing to 1): whole coalition sizes are
    enumerated, most weighted first, while they fit; then complementary pairs are drawn."""
    if features < 2:
        return np.zeros((0, features), dtype=bool), np.zeros(0)
    sizes = np.arange(1, features)
    mass = (features - 1) / (sizes * (features - sizes))
    mass /= mass.sum()
    masks: list[np.ndarray] = []
    weights: list[float] = []
    left, done = count, 0
    for size in range(1, features // 2 + 1):
        pair = sorted({size, features - size})
        needed = sum(math.comb(features, s) for s in pair)
        if needed > left:
            break
        for s in pair:
            for chosen in itertools.combinations(range(features), s):
                masks.append(_mask(features, chosen))
                weights.append(mass[s - 1] / math.comb(features, s))
        left, done = left - needed, size
    rest = sizes[done : features - 1 - done]
    pairs = left // 2
    if len(rest) and pairs:
        rng = np.random.default_rng(seed)
        drawn = rng.choice(rest, size=pairs, p=mass[rest - 1] / mass[rest - 1].sum())
        share = mass[rest - 1].sum() / (2 * pairs)
        for s in drawn:
            mask = _mask(features, rng.choice(features, size=s, replace=False))
            masks += [mask, ~mask]
            weights += [share, share]
    return np.array(masks, dtype=bool).reshape(-1, features), np.array(weights)


def shap_values(
    predict: Predict,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    weights: np.ndarray,
    *,
    coalitions: int,
    seed: int,
    deadline: float | None = None,
    min_rows: int = 1,
) -> KernelValues:
    """Kernel SHAP values of `predict` on `rows` against the weighted `background`, with
    at most `coalitions` coalitions shared by every row. Rows are explained in chunks of
    about CHUNK_ROWS model rows; a chunk that would end after `deadline` (by
    `time.perf_counter()`, judged by the one before) is not started once `min_rows` rows
    are explained, so fewer rows may come back (never none). Raises `ValueError` for no
    rows."""
    columns = list(rows.columns)
    x = rows.to_numpy(dtype=float)
    centres = background[columns].to_numpy(dtype=float)
    masks, kernel = draw_coalitions(len(columns), coalitions, seed=seed)
    step = max(1, CHUNK_ROWS // max(1, len(masks) * len(centres)))
    base: np.ndarray | None = None
    parts: list[np.ndarray] = []
    outputs: list[np.ndarray] = []
    took = 0.0
    for start in range(0, len(x), step):
        begun = time.perf_counter()
        late = deadline is not None and begun + took > deadline
        if outputs and late and start >= min_rows:
            break
        # The first call also scores the background: one call fewer for a slow model.
        value, fx, scored = _coalition_values(
            predict, x[start : start + step], centres, weights, masks, columns, score=not outputs
        )
        base = scored if base is None else base
        if len(masks):
            parts.append(_solve(value - base, fx - base, masks, kernel))
        else:  # one feature: it takes the whole difference
            parts.append((fx - base)[:, None, :])
        outputs.append(fx)
        took = time.perf_counter() - begun
    if base is None:
        raise ValueError("there are no rows to explain")
    return KernelValues(base, np.concatenate(parts), np.concatenate(outputs))


def seconds_per_row(predict: Predict, rows: pd.DataFrame) -> float:
    """Seconds the model takes per row, from one call on `rows` (a model's fixed cost per
    call is counted in: a slow call makes a slow model)."""
    started = time.perf_counter()
    predict(rows)
    return (time.perf_counter() - started) / max(len(rows), 1)


def _all_coalitions(features: int) -> int:
    return 2**features - 2 if features < 40 else 2**40


def _mask(features: int, chosen: object) -> np.ndarray:
    mask = np.zeros(features, dtype=bool)
    mask[np.asarray(chosen, dtype=int)] = True
    return mask


def _as_matrix(outputs: np.ndarray) -> np.ndarray:
    """A model's outputs as rows x outputs (a regressor's single output as one column)."""
    array = np.asarray(outputs, dtype=float)
    return array.reshape(len(array), -1)


def _call(predict: Predict, x: np.ndarray, columns: list[str]) -> np.ndarray:
    return _as_matrix(predict(pd.DataFrame(x, columns=columns)))


def _coalition_values(
    predict: Predict,
    x: np.ndarray,
    centres: np.ndarray,
    weights: np.ndarray,
    masks: np.ndarray,
    columns: list[str],
    *,
    score: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """In one call of the model: each row's value of each coalition (rows x coalitions x
    outputs: the weighted mean output over the background with the coalition's features
    taken from the row), the rows' own outputs (rows x outputs) and, if `score`, the
    background's weighted mean output (outputs,)."""
    # rows x coalitions x centres x features
    synthetic = np.where(masks[None, :, None, :], x[:, None, None, :], centres[None, None])
    batch = [synthetic.reshape(-1, x.shape[1]), x] + ([centres] if score else [])
    out = _call(predict, np.concatenate(batch), columns)
    cut = synthetic.shape[0] * synthetic.shape[1] * synthetic.shape[2]
    value = out[:cut].reshape(len(x), len(masks), len(centres), -1)
    base = weights @ out[cut + len(x) :] if score else None
    return np.einsum("rmco,c->rmo", value, weights), out[cut : cut + len(x)], base


def _solve(
    value: np.ndarray, total: np.ndarray, masks: np.ndarray, kernel: np.ndarray
) -> np.ndarray:
    """The weighted least squares fit of the coalition values (rows x coalitions x
    outputs, less the base) by features' values that add up to `total` (rows x outputs),
    the last feature's eliminated by that constraint: rows x features x outputs."""
    rows, count, outputs = value.shape
    z = masks.astype(float)
    target = value.transpose(1, 0, 2).reshape(count, rows * outputs)
    flat_total = total.reshape(1, rows * outputs)
    target = target - z[:, -1:] * flat_total
    design = z[:, :-1] - z[:, -1:]
    root = np.sqrt(kernel)[:, None]
    head, *_ = np.linalg.lstsq(design * root, target * root, rcond=None)
    last = flat_total - head.sum(axis=0, keepdims=True)
    phi = np.vstack([head, last])  # features x (rows * outputs)
    return phi.reshape(len(z[0]), rows, outputs).transpose(1, 0, 2)
