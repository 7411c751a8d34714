"""LTTB downsampling: bounded point counts that keep a line's shape, and lines that
break where the readings stop instead of joining the two sides."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from django_admin.dashboards.downsample import downsample, gap_threshold, lttb_indices, with_gaps


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


# --- gaps: where readings stop, the line breaks ---

T0 = pd.Timestamp("2025-03-01T12:00:00Z")


def test_a_pause_in_the_readings_breaks_the_line_once() -> None:
    # Given readings a second apart, then none for ten minutes, then again
    times = [T0 + pd.Timedelta(seconds=s) for s in [*range(60), *range(660, 720)]]
    frame = pd.DataFrame({"time": times, "prediction": np.arange(120.0), "model": "m:1"})
    # When drawn with gaps
    drawn = downsample(frame, x="time", y="prediction", points=1000, gaps=True)
    # Then one row without a value lies between the two sides, inside the pause
    (hole,) = drawn.index[drawn["prediction"].isna()]
    assert drawn["time"].iloc[hole - 1] == times[59] and drawn["time"].iloc[hole + 1] == times[60]
    assert times[59] < drawn["time"].iloc[hole] < times[60]
    assert len(drawn) == 121 and drawn["model"].isna().sum() == 1


def test_a_regular_stream_has_no_gap_and_a_short_one_no_threshold() -> None:
    times = pd.Series(pd.date_range(T0, periods=100, freq="2s"))
    assert gap_threshold(times) == 10.0  # five times the usual 2 s
    assert gap_threshold(times.iloc[:2]) is None
    frame = pd.DataFrame({"time": times, "y": 1.0})
    assert len(with_gaps(frame, x="time", threshold=gap_threshold(times))) == 100


def test_a_gap_survives_downsampling_that_skips_the_points_around_it() -> None:
    # Given a day of readings with an hour missing, drawn as 200 points
    times = pd.date_range(T0, periods=86_400, freq="s")
    frame = pd.DataFrame({"time": times, "y": np.sin(np.arange(86_400) / 500)})
    frame = frame[
        (frame["time"] < T0 + pd.Timedelta(hours=5)) | (frame["time"] >= T0 + pd.Timedelta(hours=6))
    ]
    drawn = downsample(frame, x="time", y="y", points=200, gaps=True)
    # Then the drawn line still breaks, once, inside the missing hour
    holes = drawn[drawn["y"].isna()]
    assert len(holes) == 1
    assert T0 + pd.Timedelta(hours=5) - pd.Timedelta(seconds=1) <= holes["time"].iloc[0]
    assert holes["time"].iloc[0] <= T0 + pd.Timedelta(hours=6)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.floats(min_value=0.0, max_value=1e5, allow_nan=False), min_size=1, max_size=80
    ),
    threshold=st.floats(min_value=0.001, max_value=1e4, allow_nan=False),
)
def test_with_gaps_breaks_exactly_the_long_steps(steps: list[float], threshold: float) -> None:
    # Given readings at arbitrary (sorted, possibly equal) times
    seconds = np.cumsum([0.0, *steps])
    times = T0 + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame({"time": times, "y": np.arange(len(seconds), dtype=float)})
    step_seconds = np.diff(frame["time"].astype("int64").to_numpy()) / 1e9
    assume(not np.isclose(step_seconds, threshold, rtol=1e-6, atol=1e-6).any())  # no tie
    # When gaps longer than the threshold are broken
    drawn = with_gaps(frame, x="time", threshold=threshold)
    # Then every reading is kept in order, one break per long step, each inside its step
    kept = drawn.dropna(subset=["y"])
    assert kept["y"].tolist() == frame["y"].tolist()
    assert drawn["y"].isna().sum() == int((step_seconds > threshold).sum())
    assert drawn["time"].is_monotonic_increasing
    # And no two consecutive readings left joined are further apart than the threshold
    run = drawn["y"].notna().astype(int).diff().ne(0).cumsum()
    for _, part in drawn[drawn["y"].notna()].groupby(run[drawn["y"].notna()]):
        joined = np.diff(part["time"].astype("int64").to_numpy()) / 1e9
        assert (joined <= threshold + 1e-6).all()


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=1, max_value=3600), min_size=3, max_size=400),
    points=st.integers(min_value=3, max_value=60),
)
def test_downsampling_with_gaps_breaks_where_the_full_series_does(
    steps: list[int], points: int
) -> None:
    # Given arbitrary readings, drawn as fewer points
    seconds = np.cumsum([0, *steps])
    frame = pd.DataFrame(
        {"time": T0 + pd.to_timedelta(seconds, unit="s"), "y": np.cos(seconds / 7.0)}
    )
    drawn = downsample(frame, x="time", y="y", points=points, gaps=True)
    # Then at most `points` rows are drawn, breaks included, and a break lies between two drawn
    # readings exactly when the full series has a long step between them
    threshold = gap_threshold(frame["time"])
    kept = drawn.dropna(subset=["y"])
    assert len(drawn) <= points
    long_steps = seconds[:-1][np.diff(seconds) > threshold] if threshold else np.array([])
    at = (kept["time"] - T0).dt.total_seconds().to_numpy()
    pairs = itertools.pairwise(at)
    expected = sum(bool(((a <= long_steps) & (long_steps < b)).any()) for a, b in pairs)
    assert drawn["y"].isna().sum() == expected
