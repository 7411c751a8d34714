"""What the dashboards show, fetched from the APIs that own it and shaped into frames.
Plain functions over `django_admin.apis.client`, so a test can call them without a
browser. Every read is bounded: a row limit, and a time window where the API has one.
API failures come out as the domain errors of `gits_common.errors`."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd
from django.conf import settings

from django_admin.apis import client
from django_admin.dashboards.deadletters import dead_letter_count
from gits_common.amqp import dead_letter_queue
from gits_common.schemas import Task, UseCase

JOB_STATUSES = ("queued", "processing", "finished", "failed")
FINAL_STATUSES = ("finished", "failed")
MAX_JOBS = 2000  # newest jobs the main dashboard's throughput and timing look at
MAX_PREDICTIONS = 500  # newest production rows the main dashboard draws
# Newest production rows read to find one service's among them when several services
# share its use case (each of N services gets about MAX_PREDICTIONS of N * MAX_PREDICTIONS).
MAX_SHARED_ROWS = 5000
# Newest finished jobs that say which services have data now (each carries its message,
# up to 16 KiB, so few are read).
ACTIVITY_JOBS = 50
# A bucket of which less than this share was observed (the one still filling, or one cut
# by the window's start) is too short to rate: its few seconds swing wildly.
MIN_OBSERVED = 0.5
MAX_ALERTS = 50
# Time buckets of the job graphs, the finest that keeps them under ~40 points.
BUCKETS = ("1s", "2s", "5s", "10s", "30s", "1min", "5min")
BUCKETS_SHOWN = 40


@dataclass(frozen=True)
class Service:
    """A worker service as queue_manager knows it."""

    name: str
    use_case: str
    routing_key: str
    model: str  # "<algorithm>:<version>"


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def services() -> list[Service]:
    """Every service, by name."""
    found = client("queue_manager").request("GET", "/queue_manager/services")
    return sorted(
        (
            Service(
                name=s["name"],
                use_case=s["use_case"],
                routing_key=s["routing_key"],
                model=f"{s['algorithm_name']}:{s['resolved_version']}",
            )
            for s in found
        ),
        key=lambda s: s.name,
    )


def use_case_names() -> list[str]:
    """The names of every registered use case, sorted."""
    found = client("ml_data_api").request("GET", "/ml_data_api/use_cases")
    return sorted(record["use_case"]["name"] for record in found)


# Kept: a definition never changes once registered (a different one is refused).
@lru_cache(maxsize=256)
def use_case(name: str) -> UseCase:
    """A use case's definition (its time column and target)."""
    body = client("ml_data_api").request("GET", f"/ml_data_api/use_cases/{name}")
    return UseCase.model_validate(body["use_case"])


def job_counts(service: str | None) -> dict[str, int]:
    """Jobs per status, of one service or of all."""
    params = {"service": service} if service else {}
    counts = client("queue_manager").request("GET", "/queue_manager/jobs/counts", params=params)
    return {status: int(counts.get(status, 0)) for status in JOB_STATUSES}


def recent_jobs(service: str | None, *, window: timedelta, limit: int = MAX_JOBS) -> pd.DataFrame:
    """The newest jobs started within `window` (at most `limit`): start, end, status and
    seconds elapsed, oldest first."""
    params: dict[str, Any] = {"since": (now() - window).isoformat(), "limit": limit}
    if service:
        params["service"] = service
    jobs = client("queue_manager").request("GET", "/queue_manager/jobs", params=params)
    frame = pd.DataFrame(
        {
            "start": [j["metadata"]["start_date"] for j in jobs],
            "end": [j["metadata"].get("end_date") for j in jobs],
            "status": [j["last_status"] for j in jobs],
            "elapsed": [j["metadata"].get("time_elapsed_sec") for j in jobs],
        }
    )
    frame["start"] = _times(frame["start"])
    frame["end"] = _times(frame["end"])
    frame["elapsed"] = pd.to_numeric(frame["elapsed"])
    return frame.sort_values("start", ignore_index=True)


def bucket_for(times: pd.Series) -> str:
    """The finest of `BUCKETS` that splits the span of `times` (datetimes; missing ones
    left out) into at most `BUCKETS_SHOWN` buckets."""
    present = times.dropna()
    span = (present.max() - present.min()).total_seconds() if len(present) else 0.0
    for bucket in BUCKETS:
        if span / pd.Timedelta(bucket).total_seconds() <= BUCKETS_SHOWN:
            return bucket
    return BUCKETS[-1]


def throughput(
    jobs: pd.DataFrame,
    *,
    bucket: str = "10s",
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Messages handled per second (one job a message), per time bucket (a pandas
    frequency that divides a day, e.g. "10s") and final status (finished, failed) of the
    jobs ended in it: a frame of time (the bucket's start, UTC), status, jobs (count),
    seconds (how much of the bucket was observed) and per_second (jobs / seconds).

    [start, end) is the time the jobs cover (default: the whole buckets from the first
    ended job's to the last's). A bucket cut by it, such as the current one still filling
    at `end` = now, is rated over its observed seconds, not its full length, so the line
    does not dip at its end; a bucket less than `MIN_OBSERVED` of which was observed is
    left out. Buckets observed without an ended job are rates of 0 (nothing was handled),
    for each status that occurs. Empty frame when no job ended."""
    columns = ["time", "status", "jobs", "seconds", "per_second"]
    done = jobs.dropna(subset=["end"])
    done = done[done["status"].isin(FINAL_STATUSES)]
    if done.empty:
        return pd.DataFrame(columns=columns)
    length = pd.Timedelta(bucket)
    bins = done["end"].dt.floor(bucket)
    first = pd.Timestamp(start).floor(bucket) if start is not None else bins.min()
    last = pd.Timestamp(end).ceil(bucket) - length if end is not None else bins.max()
    grid = pd.date_range(first, max(first, last), freq=bucket)
    statuses = sorted(done["status"].unique())
    counted = done.groupby([bins.rename("time"), "status"]).size()
    full = pd.MultiIndex.from_product([grid, statuses], names=["time", "status"])
    out = counted.reindex(full, fill_value=0).rename("jobs").reset_index()
    lo = pd.Timestamp(start) if start is not None else grid[0]
    hi = pd.Timestamp(end) if end is not None else grid[-1] + length
    observed = (out["time"] + length).clip(upper=hi) - out["time"].clip(lower=lo)
    out["seconds"] = observed.dt.total_seconds()
    out = out[out["seconds"] >= MIN_OBSERVED * length.total_seconds()]
    out = out.assign(per_second=out["jobs"] / out["seconds"])
    return out.reset_index(drop=True)[columns]


def observed_since(jobs: pd.DataFrame, *, since: datetime, limit: int) -> datetime:
    """From when `recent_jobs(window, limit)`'s answer holds every job: `since`, or the
    oldest start among them when the limit cut older ones off (before it, a throughput
    would count only some of the jobs and seem to ramp up)."""
    if len(jobs) < limit or jobs.empty:
        return since
    oldest: datetime = jobs["start"].min().to_pydatetime()
    return max(since, oldest)


def processing_time(jobs: pd.DataFrame, *, bucket: str = "10s") -> pd.DataFrame:
    """Mean and maximum seconds from a job's start to its end, per time bucket."""
    timed = jobs.dropna(subset=["end", "elapsed"])
    if timed.empty:
        return pd.DataFrame(columns=["time", "mean", "max"])
    grouped = timed.groupby(pd.Grouper(key="end", freq=bucket))["elapsed"]
    out = grouped.agg(["mean", "max"]).dropna().reset_index()
    return out.rename(columns={"end": "time"})


def row_counts(name: str) -> dict[str, int]:
    """Rows in each of a use case's tables."""
    counts: dict[str, int] = client("ml_data_api").request(
        "GET", f"/ml_data_api/use_cases/{name}/counts"
    )
    return counts


def production_rows(
    definition: UseCase, *, last: int, start: datetime | None = None
) -> pd.DataFrame:
    """The newest `last` production rows (from `start` on, when given), oldest first, as
    time (UTC), message_id, prediction, prediction_score (float, NaN where none), target
    (missing until the ground truth arrives) and model_version.

    Regression predictions and targets are floats; a classification's or an anomaly
    use case's stay the labels as stored (class labels; flags 0/1), never turned into
    floats by a missing value, so that predicted and true labels compare equal."""
    params: dict[str, Any] = {"last": last}
    if start is not None:
        params["start"] = start.isoformat()
    path = f"/ml_data_api/use_cases/{definition.name}/production/rows"
    rows = client("ml_data_api").request("GET", path, params=params)["rows"]
    target = definition.target.name if definition.target else None
    labels = {
        "prediction": [r.get("prediction") for r in rows],
        "target": [r.get(target) if target else None for r in rows],
    }
    frame = pd.DataFrame(
        {
            "time": _times(pd.Series([r[definition.time_column] for r in rows], dtype=object)),
            "message_id": [r.get("message_id") for r in rows],
            **{name: pd.Series(values, dtype=object) for name, values in labels.items()},
            "prediction_score": pd.to_numeric(
                pd.Series([r.get("prediction_score") for r in rows], dtype=object)
            ).astype(float),
            "model_version": [r.get("model_version") for r in rows],
        }
    )
    if definition.task is Task.regression:
        for name in labels:
            frame[name] = pd.to_numeric(frame[name]).astype(float)
    return frame


def active_services(*, limit: int = ACTIVITY_JOBS) -> list[str]:
    """The services among the newest `limit` finished jobs, the one with the newest
    first: those with data to show. Unavailable when queue_manager is down."""
    params = {"status": "finished", "limit": limit}
    jobs = client("queue_manager").request("GET", "/queue_manager/jobs", params=params)
    return list(dict.fromkeys(str(j["service"]) for j in jobs))


def with_data_first(names: list[str], active: list[str]) -> list[str]:
    """`names` reordered: those in `active` first, in its order (newest data first), then
    the others in their own order. Names of `active` not in `names` are ignored."""
    known = set(names)
    first = [name for name in dict.fromkeys(active) if name in known]
    return first + [name for name in names if name not in set(first)]


@dataclass(frozen=True)
class ServiceRows:
    """One service's newest production rows (`production_rows`' frame) and how they were
    told from its use case's other services' rows, in words."""

    rows: pd.DataFrame
    source: str


def service_rows(
    definition: UseCase, *, service: str, sharing: int, last: int = MAX_PREDICTIONS
) -> ServiceRows:
    """The newest `last` production rows (oldest first) that the service predicted.

    Production rows do not name their service, but each finished job of a service names
    the rows it stored (its result's message ids). With `sharing` <= 1 (no other service
    predicts for the use case) every production row is the service's; otherwise the rows
    are those of the use case's newest `sharing` * `last` (at most `MAX_SHARED_ROWS`) that
    the service's newest `last` finished jobs name. Raises the APIs' domain errors."""
    if sharing <= 1:
        rows = production_rows(definition, last=last)
        return ServiceRows(rows, f"all of use case {definition.name}'s: no other service")
    ids = predicted_ids(service, limit=last)
    wide = production_rows(definition, last=min(sharing * last, MAX_SHARED_ROWS))
    mine = wide[wide["message_id"].isin(ids)].tail(last).reset_index(drop=True)
    source = (
        f"those its jobs name among use case {definition.name}'s newest {len(wide):,}, "
        f"which {sharing} services share"
    )
    return ServiceRows(mine, source)


def predicted_ids(service: str, *, limit: int) -> set[str]:
    """The message ids of the production rows that the service's newest `limit` finished
    jobs stored (a job lists at most 100, the workers' RESULT_MAX_RECORDS)."""
    params = {"service": service, "status": "finished", "limit": limit}
    jobs = client("queue_manager").request("GET", "/queue_manager/jobs", params=params)
    return {
        str(row["message_id"])
        for job in jobs
        if isinstance(job.get("result"), list)
        for row in job["result"]
        if isinstance(row, dict) and row.get("message_id") is not None
    }


def dead_letters(service: str) -> int | None:
    """Messages waiting in the service's dead-letter queue (None: no such queue yet)."""
    return dead_letter_count(settings.GITS_AMQP_URL, dead_letter_queue(service))


@dataclass(frozen=True)
class History:
    """A use case's monitoring history: time, metric, feature (None for use-case-wide
    metrics) and value, oldest first; and when it is empty, monitoring_api's reason."""

    values: pd.DataFrame
    reason: str | None


def history(name: str, *, window: timedelta) -> History:
    """The use case's monitoring history within `window`, or why it has none."""
    params = {"start": (now() - window).isoformat()}
    path = f"/monitoring_api/use_cases/{name}/history"
    found = client("monitoring_api").request("GET", path, params=params)
    frame = pd.DataFrame(found["values"], columns=["time", "metric", "feature", "value"])
    frame["time"] = _times(frame["time"])
    return History(frame, found.get("reason"))


def drift_share_threshold(name: str) -> float | None:
    """The drift share at which the use case raises an alert (None: no such check)."""
    path = f"/monitoring_api/use_cases/{name}/thresholds"
    limit: float | None = client("monitoring_api").request("GET", path).get("drift_share")
    return limit


def alerts(name: str, *, window: timedelta, limit: int = MAX_ALERTS) -> list[dict[str, Any]]:
    """The use case's alerts raised within `window`, newest first, at most `limit`."""
    params = {"since": (now() - window).isoformat()}
    path = f"/monitoring_api/use_cases/{name}/alerts"
    found: list[dict[str, Any]] = client("monitoring_api").request("GET", path, params=params)
    return found[::-1][:limit]


# --- What each task's graphs draw, from production rows (`production_rows`' frame) ---

ANOMALY_FLAG = 1  # an anomaly use case's `prediction` (and known label) of an anomaly


def labelled_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that have both a prediction and a known target (ground truth arrived)."""
    return rows.dropna(subset=["prediction", "target"])


def classes(rows: pd.DataFrame) -> list[Any]:
    """Every class label among the predictions and the known targets, sorted by its text
    (labels of a column share one type, but a sort must not fail if they do not)."""
    found = set(rows["prediction"].dropna()) | set(rows["target"].dropna())
    return sorted(found, key=str)


def confusion_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """The realised confusion matrix of the labelled rows: a k x k frame of row counts,
    index the true class ("truth"), columns the predicted class ("predicted"), both in
    `classes` order (k = 0 without labelled rows)."""
    done = labelled_rows(rows)
    labels = classes(done)
    counts = pd.crosstab(done["target"], done["prediction"])
    matrix = counts.reindex(index=labels, columns=labels, fill_value=0).astype(int)
    return matrix.rename_axis(index="truth", columns="predicted")


def class_balance(rows: pd.DataFrame) -> pd.DataFrame:
    """How the classes are spread: per class (index, `classes` order) the rows predicted
    as it ("predicted") and the labelled rows truly of it ("truth"), as counts, and each
    as a share of its column's total ("predicted_share", "truth_share", 0..1; NaN when
    the column has no row)."""
    predicted = rows["prediction"].dropna()
    truth = labelled_rows(rows)["target"]
    out = pd.DataFrame(index=pd.Index(classes(rows), name="class"))
    for column, values in (("predicted", predicted), ("truth", truth)):
        out[column] = values.value_counts().reindex(out.index, fill_value=0).astype(int)
        total = int(out[column].sum())
        out[f"{column}_share"] = out[column] / total if total else float("nan")
    return out


def flags(rows: pd.DataFrame) -> pd.Series:
    """Whether each row is flagged an anomaly (`prediction` == 1), as booleans."""
    return rows["prediction"].map(lambda value: value == ANOMALY_FLAG).astype(bool)


def flagged_spans(rows: pd.DataFrame) -> pd.DataFrame:
    """The runs of consecutive flagged rows among the predicted ones, oldest first:
    start (the first flagged row's time), end (the time of the next reading, when the
    flag was seen to end; the last flagged row's time for a run still going), rows (in
    the run) and max_score (the highest `prediction_score`, NaN without scores)."""
    predicted = rows.dropna(subset=["prediction"]).sort_values("time", kind="stable")
    flagged = flags(predicted)
    columns = ["start", "end", "rows", "max_score"]
    if not flagged.any():
        return pd.DataFrame(columns=columns)
    run = (flagged != flagged.shift()).cumsum()
    next_time = predicted["time"].shift(-1).fillna(predicted["time"])
    spans = predicted.assign(run=run, next_time=next_time)[flagged.to_numpy()]
    grouped = spans.groupby("run", sort=True)
    out = pd.DataFrame(
        {
            "start": grouped["time"].first(),
            "end": grouped["next_time"].last(),
            "rows": grouped.size(),
            "max_score": grouped["prediction_score"].max(),
        }
    )
    return out.reset_index(drop=True)[columns]


def anomaly_rate(rows: pd.DataFrame, *, bucket: str) -> pd.DataFrame:
    """The share of flagged rows among the predicted ones per time bucket (a pandas
    frequency, e.g. "10s"), buckets without rows left out: time (the bucket's start),
    rows, flagged and rate (0..1)."""
    predicted = rows.dropna(subset=["prediction"])
    columns = ["time", "rows", "flagged", "rate"]
    if predicted.empty:
        return pd.DataFrame(columns=columns)
    counted = predicted.assign(flagged=flags(predicted)).groupby(
        pd.Grouper(key="time", freq=bucket)
    )["flagged"]
    out = counted.agg(rows="size", flagged="sum").reset_index()
    out = out[out["rows"] > 0].reset_index(drop=True)
    out["flagged"] = out["flagged"].astype(int)
    out["rate"] = out["flagged"] / out["rows"]
    return out[columns]


@dataclass(frozen=True)
class AnomalyReport:
    """What monitoring_api says of an anomaly use case's window: the bound model's score
    threshold (a row is flagged when its score is above it; None: the model has none),
    the window's anomaly rate (0..1) and the rate at which it alerts (None: no such
    check), and whether it alerts now."""

    threshold: float | None
    model_version: str | None
    anomaly_rate: float | None
    alert_threshold: float | None
    alerting: bool


def anomaly_report(
    name: str, *, start: datetime | None = None, last: int | None = None, bucket_seconds: int
) -> AnomalyReport:
    """monitoring_api's anomaly report of the use case over [start, now) or its newest
    `last` rows, rates per `bucket_seconds`. Raises the API's domain errors (NotFound for
    an unknown use case, Conflict for one of another task, Unavailable when it is down)."""
    params: dict[str, Any] = {"bucket_seconds": bucket_seconds}
    if start is not None:
        params["start"] = start.isoformat()
    if last is not None:
        params["last"] = last
    path = f"/monitoring_api/use_cases/{name}/anomalies"
    found = client("monitoring_api").request("GET", path, params=params)
    return AnomalyReport(
        threshold=_number(found.get("threshold")),
        model_version=found.get("model_version"),
        anomaly_rate=_number(found.get("anomaly_rate")),
        alert_threshold=_number(found.get("alert_threshold")),
        alerting=bool(found.get("alerting")),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _times(values: pd.Series) -> pd.Series:
    """ISO 8601 strings (or None) as UTC datetimes."""
    return pd.to_datetime(values, utc=True, format="ISO8601")


class LiveFeed:
    """The newest predictions of each use case, kept in memory and topped up with only the
    rows stored since the last look: the real-time dashboard asks every few seconds, and
    reading a whole window each time would move megabytes for a handful of new rows."""

    # Readings are stamped when sent and stored a little later (workers batch), so each
    # top-up looks back this far and drops what it already has.
    OVERLAP = timedelta(seconds=30)

    def __init__(self, *, max_rows: int = 20_000) -> None:
        self.max_rows = max_rows
        self._frames: dict[str, pd.DataFrame] = {}
        self._covered_from: dict[str, datetime] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def rows(self, definition: UseCase, *, window: timedelta) -> pd.DataFrame:
        """The use case's production rows of the last `window` (the newest `max_rows` at
        most), oldest first."""
        with self._guard:
            lock = self._locks.setdefault(definition.name, threading.Lock())
        with lock:
            start = now() - window
            self._refresh(definition, start)
            frame = self._frames[definition.name]
            return frame[frame["time"] >= pd.Timestamp(start)]

    def _refresh(self, definition: UseCase, start: datetime) -> None:
        name = definition.name
        held = self._frames.get(name)
        if held is None or start < self._covered_from[name]:
            held = production_rows(definition, last=self.max_rows, start=start)
            self._covered_from[name] = start
        elif not held.empty:
            since = held["time"].iloc[-1].to_pydatetime() - self.OVERLAP
            fresh = production_rows(definition, last=self.max_rows, start=since)
            new = fresh[~fresh["message_id"].isin(held["message_id"])]
            if not new.empty:
                held = pd.concat([held, new]).sort_values("time", ignore_index=True)
        else:
            held = production_rows(definition, last=self.max_rows, start=start)
        self._frames[name] = held.iloc[-self.max_rows :]
