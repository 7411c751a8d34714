"""Downsampling of long series for the browser: Largest-Triangle-Three-Buckets (Steinarsson,
2013) keeps the points that shape the line (peaks, dips, steps), so a day of readings
drawn as a thousand points looks like the day, and the browser stays smooth."""

from __future__ import annotations

import numpy as np
import pandas as pd


def lttb_indices(x: np.ndarray, y: np.ndarray, points: int) -> np.ndarray:
    """Indices of at most `points` samples of (x, y) chosen by LTTB; x ascending. The
    first and last samples are always kept."""
    n = len(x)
    if points >= n or n <= 2:
        return np.arange(n)
    if points < 3:
        return np.array([0, n - 1])[:points]
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    # Buckets of the samples between the first and the last, as even as possible.
    edges = np.linspace(1, n - 1, points - 1).astype(int)
    chosen = np.empty(points, dtype=int)
    chosen[0], chosen[-1] = 0, n - 1
    previous = 0
    for b in range(points - 2):
        start, stop = edges[b], edges[b + 1]
        # The next bucket's mean (or the last sample) is the triangle's third corner.
        after = slice(edges[b + 1], edges[b + 2]) if b + 2 < len(edges) else slice(n - 1, n)
        third_x, third_y = xs[after].mean(), ys[after].mean()
        area = np.abs(
            (xs[previous] - third_x) * (ys[start:stop] - ys[previous])
            - (xs[previous] - xs[start:stop]) * (third_y - ys[previous])
        )
        previous = start + int(np.argmax(area))
        chosen[b + 1] = previous
    return chosen


def downsample(frame: pd.DataFrame, *, x: str, y: str, points: int) -> pd.DataFrame:
    """At most `points` rows of a frame sorted by `x` (numbers or datetimes), chosen by
    LTTB on column `y`; rows whose `y` is missing are dropped first."""
    present = frame.dropna(subset=[y])
    if len(present) <= points:
        return present
    xs = present[x]
    numeric = xs.astype("int64") if pd.api.types.is_datetime64_any_dtype(xs) else xs
    keep = lttb_indices(numeric.to_numpy(), present[y].to_numpy(), points)
    return present.iloc[keep]
