"""Shaping what the dashboards draw: throughput and processing time from jobs (the
bucket still filling rated over its seconds so far), a service's own predictions, which
services have data, and the real-time feed that tops itself up instead of re-reading
its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_admin.dashboards import data
from gits_ml.demo import PRODUCT_QUALITY

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def jobs(*specs: tuple[float, float | None, str]) -> pd.DataFrame:
    """Jobs from (start second, seconds to end or None, status)."""
    return pd.DataFrame(
        {
            "start": [pd.Timestamp(T0 + timedelta(seconds=s)) for s, _, _ in specs],
            "end": [
                pd.Timestamp(T0 + timedelta(seconds=s + e)) if e is not None else pd.NaT
                for s, e, _ in specs
            ],
            "status": [status for _, _, status in specs],
            "elapsed": [e for _, e, _ in specs],
        }
    )


def test_throughput_counts_ended_jobs_per_second_by_status() -> None:
    # Given 20 jobs finished in the first 10 seconds, 5 failed, 3 still processing
    frame = jobs(
        *[(i * 0.5, 0.1, "finished") for i in range(20)],
        *[(i, 0.2, "failed") for i in range(5)],
        *[(i, None, "processing") for i in range(3)],
    )
    # When counted in 10-second buckets
    rates = data.throughput(frame, bucket="10s")
    # Then the first bucket ran at 2 finished and 0.5 failed jobs a second
    first = rates[rates["time"] == pd.Timestamp(T0)].set_index("status")["per_second"]
    assert first["finished"] == pytest.approx(2.0)
    assert first["failed"] == pytest.approx(0.5)
    assert "processing" not in set(rates["status"])


def test_processing_time_is_mean_and_max_per_bucket() -> None:
    frame = jobs(
        (0, 0.2, "finished"), (1, 0.4, "finished"), (2, 1.2, "failed"), (3, None, "queued")
    )
    timing = data.processing_time(frame, bucket="10s")
    assert timing["mean"].iloc[0] == pytest.approx(0.6)
    assert timing["max"].iloc[0] == pytest.approx(1.2)


def test_buckets_follow_the_span_of_the_jobs() -> None:
    # A few seconds of jobs are counted per second, a quarter of an hour per 30 seconds
    ends = [jobs((0, 0.1, "finished"), (8, 0.1, "finished")), jobs((0, None, "queued"))]
    assert data.bucket_for(ends[0]["end"]) == "1s"
    assert data.bucket_for(jobs((0, 0.1, "finished"), (900, 0.1, "finished"))["end"]) == "30s"
    assert data.bucket_for(ends[1]["end"]) == "1s"


def test_no_ended_job_gives_empty_frames() -> None:
    frame = jobs((0, None, "processing"))
    assert data.throughput(frame).empty and data.processing_time(frame).empty


class FakeProduction:
    """Production rows arriving one a second, read as ml_data_api would answer."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.reads: list[dict[str, Any]] = []

    def arrive(self, n: int, at: datetime) -> None:
        start = len(self.rows)
        for i in range(start, start + n):
            self.rows.append({"time": at + timedelta(seconds=i - start), "message_id": f"m{i}"})

    def read(self, definition: Any, *, last: int, start: datetime | None = None) -> pd.DataFrame:
        self.reads.append({"last": last, "start": start})
        found = [r for r in self.rows if start is None or r["time"] >= start][-last:]
        frame = pd.DataFrame(found, columns=["time", "message_id"])
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame.assign(prediction=1.0, target=None, model_version="m:1")


def test_live_feed_reads_only_what_arrived_since_its_last_look(monkeypatch) -> None:
    # Given 100 predictions of the last 100 seconds
    production, now = FakeProduction(), datetime.now(UTC)
    production.arrive(100, now - timedelta(seconds=100))
    monkeypatch.setattr(data, "production_rows", production.read)
    feed = data.LiveFeed(max_rows=1000)
    # When the feed is read, 5 more arrive, and it is read again
    first = feed.rows(PRODUCT_QUALITY, window=timedelta(minutes=5))
    production.arrive(5, now)
    second = feed.rows(PRODUCT_QUALITY, window=timedelta(minutes=5))
    # Then the second look asked only for the recent rows, and holds each row once
    assert len(first) == 100 and len(second) == 105
    assert second["message_id"].is_unique
    assert production.reads[1]["start"] > now - timedelta(seconds=60)


def test_live_feed_reads_again_for_a_longer_window_and_keeps_its_bound(monkeypatch) -> None:
    production, now = FakeProduction(), datetime.now(UTC)
    production.arrive(3000, now - timedelta(seconds=3000))
    monkeypatch.setattr(data, "production_rows", production.read)
    feed = data.LiveFeed(max_rows=1000)
    # Five minutes of one a second (the clock moved on a little since they arrived)
    assert 295 <= len(feed.rows(PRODUCT_QUALITY, window=timedelta(minutes=5))) <= 300
    # A window reaching further back than the feed holds is read anew, within max_rows
    longer = feed.rows(PRODUCT_QUALITY, window=timedelta(hours=2))
    assert len(longer) == 1000
    assert longer["message_id"].iloc[-1] == "m2999"


# --- the current bucket, still filling, is rated over its seconds so far ---


def steady(per_second: float, seconds: float) -> pd.DataFrame:
    """Jobs ending at a steady rate from T0 on, for `seconds`."""
    count = int(seconds * per_second)
    return jobs(*[(i / per_second, 0.0, "finished") for i in range(count)])


def test_the_last_bucket_still_filling_does_not_dip() -> None:
    # Given two jobs a second for 34.5 s, and now 34.5 s after T0 (4.5 s into a 10 s bucket)
    now = T0 + timedelta(seconds=34.5)
    frame = steady(2.0, 34.5)
    # When counted per 10 s up to now, 4.5 s being less than half a bucket
    rates = data.throughput(frame, bucket="10s", start=T0, end=now)
    # Then the current bucket is left out, and every bucket drawn runs at 2 a second
    assert rates["time"].max() == pd.Timestamp(T0 + timedelta(seconds=20))
    assert rates["per_second"].tolist() == pytest.approx([2.0, 2.0, 2.0])
    # And 7.5 s into it, the bucket is drawn, rated over those 7.5 s: still 2 a second
    later = T0 + timedelta(seconds=37.5)
    rates = data.throughput(steady(2.0, 37.5), bucket="10s", start=T0, end=later)
    last = rates.iloc[-1]
    assert last["seconds"] == pytest.approx(7.5) and last["per_second"] == pytest.approx(2.0)


def test_buckets_without_an_ended_job_are_a_rate_of_zero() -> None:
    # Given jobs in the first 10 s and the last 10 s of a minute, none between
    frame = jobs(*[(s, 0.0, "finished") for s in [*range(10), *range(50, 60)]])
    rates = data.throughput(frame, bucket="10s", start=T0, end=T0 + timedelta(seconds=60))
    # Then the four quiet buckets are drawn at 0, not skipped over
    assert rates["per_second"].tolist() == pytest.approx([1.0, 0, 0, 0, 0, 1.0])


def test_a_job_limit_moves_the_observed_start_to_the_oldest_job() -> None:
    frame = jobs(*[(60 + s, 0.1, "finished") for s in range(10)])
    since = T0
    assert data.observed_since(frame, since=since, limit=10) == T0 + timedelta(seconds=60)
    assert data.observed_since(frame, since=since, limit=11) == since


@settings(max_examples=150, deadline=None)
@given(
    ends=st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=200),
    after=st.floats(min_value=0, max_value=120, allow_nan=False),
    bucket=st.sampled_from(data.BUCKETS),
)
def test_throughput_rates_only_what_it_observed(ends: list[float], after: float, bucket: str):
    # Given jobs ending at arbitrary times after T0, and now somewhat after the last
    frame = jobs(*[(e, 0.0, "finished") for e in ends])
    now = T0 + timedelta(seconds=max(ends, default=0) + after)
    rates = data.throughput(frame, bucket=bucket, start=T0, end=now)
    length = pd.Timedelta(bucket).total_seconds()
    if not ends:
        assert rates.empty
        return
    # Then no bucket is rated over less than half of it, or over more than all of it
    assert (rates["seconds"] >= data.MIN_OBSERVED * length - 1e-9).all()
    assert (rates["seconds"] <= length + 1e-9).all()
    # And each rate is its jobs over its observed seconds, for buckets that began by now
    assert np.allclose(rates["per_second"] * rates["seconds"], rates["jobs"])
    assert (rates["time"] <= pd.Timestamp(now)).all()
    # And every job ended in a bucket drawn is counted there, once
    drawn = set(rates["time"])
    in_drawn = sum(pd.Timestamp(T0 + timedelta(seconds=e)).floor(bucket) in drawn for e in ends)
    assert rates["jobs"].sum() == in_drawn
    # And the buckets follow each other without a hole
    steps = rates["time"].diff().dropna().dt.total_seconds()
    assert (steps == length).all()


# --- the chosen service's own predictions, and which services have data ---


class Jobs:
    """queue_manager's and ml_data_api's answers, faked at `data.client`."""

    def __init__(self, finished: dict[str, list[list[str]]], production: list[str]) -> None:
        self.finished = finished  # service -> each job's predicted message ids
        self.production = production  # message ids, oldest first
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        params = params or {}
        self.asked.append((path, params))
        if path == "/queue_manager/jobs":
            services = [params["service"]] if "service" in params else list(self.finished)
            return [
                {"service": s, "result": [{"message_id": i} for i in ids]}
                for s in services
                for ids in self.finished.get(s, [])
            ][: params["limit"]]
        rows = [
            {"timestamp": (T0 + timedelta(seconds=n)).isoformat(), "message_id": i,
             "prediction": float(n), "quality": None, "model_version": "m:1"}
            for n, i in enumerate(self.production)
        ][-params["last"] :]  # fmt: skip
        return {"rows": rows}


def test_a_shared_use_case_shows_only_the_rows_the_service_predicted(monkeypatch) -> None:
    # Given two services predicting for one use case, their rows interleaved
    fake = Jobs({"line_a": [["m0"], ["m2"]], "line_b": [["m1"], ["m3"]]}, ["m0", "m1", "m2", "m3"])
    monkeypatch.setattr(data, "client", lambda api: fake)
    # When line_a's rows are read
    own = data.service_rows(PRODUCT_QUALITY, service="line_a", sharing=2, last=10)
    # Then they are those its jobs stored, and the words say how they were told apart
    assert own.rows["message_id"].tolist() == ["m0", "m2"]
    assert "2 services share" in own.source
    # And the use case's newest rows were read for both services' share
    assert ("/ml_data_api/use_cases/product_quality/production/rows", {"last": 20}) in fake.asked


def test_a_use_case_with_one_service_shows_all_its_rows(monkeypatch) -> None:
    fake = Jobs({}, ["m0", "m1", "m2"])
    monkeypatch.setattr(data, "client", lambda api: fake)
    own = data.service_rows(PRODUCT_QUALITY, service="line_a", sharing=1, last=10)
    assert own.rows["message_id"].tolist() == ["m0", "m1", "m2"]
    assert "no other service" in own.source
    assert all(path != "/queue_manager/jobs" for path, _ in fake.asked)


def test_the_services_with_the_newest_finished_jobs_come_first(monkeypatch) -> None:
    fake = Jobs({"busy": [["m1"], ["m2"]], "quiet": [["m0"]]}, [])
    monkeypatch.setattr(data, "client", lambda api: fake)
    assert data.active_services() == ["busy", "quiet"]
    names = ["a_idle", "busy", "quiet", "z_idle"]
    assert data.with_data_first(names, data.active_services()) == [
        "busy", "quiet", "a_idle", "z_idle"
    ]  # fmt: skip


@given(
    names=st.lists(st.text(min_size=1, max_size=5), unique=True, max_size=12),
    active=st.lists(st.text(min_size=1, max_size=5), max_size=12),
)
def test_with_data_first_reorders_without_losing_a_name(names: list[str], active: list[str]):
    ordered = data.with_data_first(names, active)
    # Every name once, those with data first in their order, then the others in theirs
    assert sorted(ordered) == sorted(names)
    busy = [n for n in dict.fromkeys(active) if n in names]
    assert ordered[: len(busy)] == busy
    assert ordered[len(busy) :] == [n for n in names if n not in busy]
