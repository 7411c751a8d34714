"""Shaping what the dashboards draw: throughput and processing time from jobs, and the
real-time feed that tops itself up instead of re-reading its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

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
