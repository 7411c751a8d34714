"""LTTB downsampling: bounded point counts that keep a line's shape."""

from __future__ import annotations

import numpy as np
import pandas as pd

from django_admin.dashboards.downsample import downsample, lttb_indices


def test_short_series_are_kept_whole() -> None:
    x = np.arange(10)
    assert lttb_indices(x, x * 2.0, 100).tolist() == list(range(10))


def test_long_series_keep_the_asked_count_with_both_ends() -> None:
    # Given a noisy day of readings, one a second
    rng = np.random.default_rng(1)
    x = np.arange(86_400)
    y = np.cumsum(rng.normal(size=len(x)))
    # When drawn as 1000 points
    kept = lttb_indices(x, y, 1000)
    # Then there are 1000, in order, from the first reading to the last
    assert len(kept) == 1000
    assert kept[0] == 0 and kept[-1] == len(x) - 1
    assert (np.diff(kept) > 0).all()


def test_a_single_spike_survives() -> None:
    # Given a flat line with one spike among 10,000 readings
    y = np.zeros(10_000)
    y[6_543] = 50.0
    # When reduced to 100 points (a plain every-100th sample would miss it)
    kept = lttb_indices(np.arange(len(y)), y, 100)
    # Then the spike is among them
    assert 6_543 in kept


def test_frames_with_times_are_downsampled_on_their_values() -> None:
    # Given a frame of predictions stamped a second apart, one missing
    times = pd.date_range("2025-01-01", periods=5_000, freq="s", tz="UTC")
    frame = pd.DataFrame({"time": times, "prediction": np.sin(np.arange(5_000) / 100)})
    frame.loc[10, "prediction"] = None
    # When downsampled to 500 points
    drawn = downsample(frame, x="time", y="prediction", points=500)
    # Then 500 rows of the frame remain, in time order, without the missing one
    assert len(drawn) == 500
    assert drawn["time"].is_monotonic_increasing
    assert drawn["prediction"].notna().all()
    assert drawn["time"].iloc[-1] == times[-1]
