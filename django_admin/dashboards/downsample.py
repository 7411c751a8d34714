"""Downsampling of long series for the browser: Largest-Triangle-Three-Buckets (Steinarsson,
2013) keeps the points that shape the line (peaks, dips, steps), so a day of readings
drawn as a thousand points looks like the day, and the browser stays smooth. Where the
readings stop for a while the line breaks (a missing row between the two sides, which
plotly leaves undrawn) instead of a straight line claiming values nobody measured."""

from __future__ import annotations

import numpy as np
import pandas as pd

# A step between consecutive readings this many times their usual (median) step is a gap.
GAP_FACTOR = 5.0


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


def downsample(
    frame: pd.DataFrame, *, x: str, y: str, points: int, gaps: bool = False
) -> pd.DataFrame:
    """At most `points` rows of a frame sorted by `x` (numbers or datetimes), chosen by
    LTTB on column `y`; rows whose `y` is missing are dropped first. With `gaps`, a row
    of missing values is then put between two kept rows wherever the full series has a
    gap between them (`gap_threshold`), so the drawn line breaks there; the readings
    then leave room for those breaks, so there are still at most `points` rows in all."""
    present = frame.dropna(subset=[y])
    threshold = gap_threshold(present[x]) if gaps else None
    breaks = 0
    if threshold is not None:
        breaks = int((np.diff(np.sort(_numbers(present[x]))) > threshold).sum())
    # A break lies between two readings, so k readings take at most k - 1 of them.
    budget = max(points - breaks, (points + 1) // 2) if breaks else points
    kept = present
    if len(present) > budget:
        keep = lttb_indices(_numbers(present[x]), present[y].to_numpy(), budget)
        kept = present.iloc[keep]
    return with_gaps(kept, x=x, threshold=threshold, source=present)


def gap_threshold(xs: pd.Series, *, factor: float = GAP_FACTOR) -> float | None:
    """The step between consecutive values of `xs` (numbers, or datetimes taken in
    seconds) above which a line breaks: `factor` times the median step between distinct
    values. None when fewer than three distinct values leave no usual step to judge by."""
    distinct = np.unique(_numbers(xs.dropna()))
    if len(distinct) < 3:
        return None
    return float(factor * np.median(np.diff(distinct)))


def with_gaps(
    frame: pd.DataFrame, *, x: str, threshold: float | None, source: pd.DataFrame | None = None
) -> pd.DataFrame:
    """`frame` (sorted by `x`) with a row inserted between each two consecutive rows that
    a gap separates: a step of more than `threshold` (in `x`'s units, seconds for
    datetimes) between consecutive values of `source[x]` (default: `frame[x]`), the
    series `frame` was drawn from. The inserted row holds the midpoint in `x` and missing
    values elsewhere (NaN, NaT or None, as the column's type has it; integer columns
    become floats), so plotly, which does not connect gaps by default, breaks the line
    there. A None threshold inserts nothing."""
    if threshold is None or len(frame) < 2:
        return frame
    drawn = _numbers(frame[x])
    origin = np.sort(_numbers((frame if source is None else source)[x].dropna()))
    steps = np.diff(origin)
    # Each gap is known by the value it follows; a pair of drawn rows has one between
    # them when more gap starts lie before the second than before the first.
    starts = origin[:-1][steps > threshold]
    before = np.searchsorted(starts, drawn, side="left")
    after_row = np.flatnonzero(np.diff(before) > 0)
    if not len(after_row):
        return frame
    values = frame[x].reset_index(drop=True)
    left = values.iloc[after_row].reset_index(drop=True)
    right = values.iloc[after_row + 1].reset_index(drop=True)
    breaks = pd.DataFrame({x: left + (right - left) / 2}).set_axis(after_row + 0.5)
    whole = frame.set_axis(np.arange(len(frame), dtype=float))
    return pd.concat([whole, breaks]).sort_index().reset_index(drop=True)


def _numbers(xs: pd.Series) -> np.ndarray:
    """`xs` as floats: numbers as they are, datetimes as seconds since the epoch."""
    if pd.api.types.is_datetime64_any_dtype(xs):
        return xs.dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    return xs.to_numpy(dtype=float)
