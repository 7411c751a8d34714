"""The overview: one tile per service (and per use case no service predicts for) saying
at a glance whether its stream flows, its model is fresh, its data drifts and its
performance holds, with a red, amber or green state and the reasons in words.

Every figure comes from the service that owns it, asked in parallel: queue_manager
(services, models, jobs), RabbitMQ (messages waiting, workers consuming, dead letters),
monitoring_api (the newest history point, thresholds, open alerts), retraining_api
(running jobs) and ml_data_api (use cases). A source that does not answer leaves its
figures empty and the tile amber with "X is not answering", never a blank page."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar

from django.conf import settings

from django_admin.apis import client
from django_admin.dashboards import data
from django_admin.site import bindings, catalog, retraining
from django_admin.site.alerts import open_alerts
from django_admin.site.queues import QueueState, queue_states
from gits_common import errors
from gits_common.monitoring import DRIFT_SHARE
from gits_common.schemas import UseCase

log = logging.getLogger(__name__)
T = TypeVar("T")

State = Literal["red", "amber", "green"]
RATE_WINDOW = timedelta(minutes=1)  # messages/s "now" is the mean over this window
FAILURE_WINDOW = timedelta(hours=1)
# A worker that handled a job this recently is "running" (short: a replaced worker, under
# a new name, counts twice only this long).
WORKER_WINDOW = timedelta(minutes=1)
ALERTS_NAMED = 3  # open alerts a tile names; the others it counts
FAILED_SHARE_RED = 0.1  # failed jobs above this share of the last hour's are red
REFERENCE_PREFIX, ESTIMATED_PREFIX = "reference_", "estimated_"
SOURCE_NAMES = {
    "ml_data_api": "ml_data_api",
    "queue_manager": "queue_manager",
    "monitoring_api": "monitoring_api",
    "retraining_api": "retraining_api",
    "rabbitmq": "RabbitMQ",
}


@dataclass(frozen=True)
class Performance:
    """A use case's primary metric in its newest history point: realised on labelled
    rows, the model's on its reference (training) rows, and estimated before labels."""

    metric: str
    realised: float | None
    reference: float | None
    estimated: float | None


@dataclass
class Tile:
    """One service (or a use case without one) at a glance; figures are None when their
    source did not answer or has none yet."""

    use_case: str
    task: str | None
    service: str | None = None
    state: State = "green"
    reasons: list[str] = field(default_factory=list)
    rate: float | None = None  # messages/s over RATE_WINDOW
    failed: int | None = None  # jobs failed within FAILURE_WINDOW
    done: int | None = None  # jobs finished or failed within FAILURE_WINDOW
    waiting: int | None = None
    workers: int | None = None
    recent_workers: int | None = None  # distinct workers with a job within WORKER_WINDOW
    dead_letters: int | None = None
    model: str | None = None
    model_uploaded_at: datetime | None = None
    drift_share: float | None = None
    drift_limit: float | None = None
    performance: Performance | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    retraining: list[dict[str, Any]] = field(default_factory=list)

    def flag(self, state: State, reason: str) -> None:
        """Add a reason; the tile takes the worst state of its reasons."""
        self.reasons.append(reason)
        if state == "red" or (state == "amber" and self.state == "green"):
            self.state = state


@dataclass
class Overview:
    """Every tile, red first, and the sources that did not answer (their names)."""

    tiles: list[Tile]
    silent: list[str]
    at: datetime

    @property
    def counts(self) -> dict[State, int]:
        """Tiles per state."""
        return {s: sum(t.state == s for t in self.tiles) for s in ("red", "amber", "green")}


class Sources:
    """Calls to the platform's services in a thread pool, all answered by one deadline.
    A call that is late or finds its source unavailable answers None and marks the
    source silent (it is not asked again); one the source refuses (no such use case)
    answers None."""

    def __init__(self, pool: ThreadPoolExecutor, deadline: float) -> None:
        self.pool = pool
        self.deadline = deadline  # time.monotonic() by which every answer is in
        self.silent: set[str] = set()

    def ask(self, source: str, call: Callable[[], T]) -> Callable[[], T | None]:
        """Start `call` now; the returned function waits for its answer (None if failed)."""
        if SOURCE_NAMES[source] in self.silent:
            return lambda: None
        future = self.pool.submit(call)

        def answer() -> T | None:
            try:
                return future.result(timeout=max(0.0, self.deadline - time.monotonic()))
            except TimeoutError:
                log.warning("overview: %s did not answer in time", source)
            except errors.Unavailable as exc:
                log.warning("overview: %s did not answer: %s", source, exc.detail)
            except errors.GitsError as exc:  # it answered, about this one figure
                log.info("overview: %s has no figure here: %s", source, exc.detail)
                return None
            self.silent.add(SOURCE_NAMES[source])
            return None

        return answer


def build() -> Overview:
    """The overview now (blocking). Every source is asked at once and answers by one
    deadline (the admin's API timeout and a second), so the page answers within about
    that time whatever is down."""
    now = datetime.now(UTC)
    pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="overview")
    sources = Sources(pool, time.monotonic() + settings.GITS_API_TIMEOUT + 1)
    try:
        tiles = _gather(sources, now)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # late calls end on their own
    order = {"red": 0, "amber": 1, "green": 2}
    tiles.sort(key=lambda t: (order[t.state], t.use_case, t.service or ""))
    return Overview(tiles, sorted(sources.silent), now)


def _gather(sources: Sources, now: datetime) -> list[Tile]:
    use_cases = sources.ask("ml_data_api", catalog.use_cases)
    services = sources.ask("queue_manager", bindings.services)
    algorithms = sources.ask("queue_manager", catalog.algorithms)
    alerts = sources.ask("monitoring_api", open_alerts)
    jobs = sources.ask("retraining_api", lambda: retraining.jobs(limit=100))
    listed = services() or []
    names = [s["name"] for s in listed if s.get("name")]
    queues = sources.ask("rabbitmq", lambda: queue_states(settings.GITS_AMQP_URL, names))
    counts = {n: _service_counts(sources, n, now) for n in names}
    known = use_cases()
    cases: dict[str, UseCase | None] = {u.name: u for u in (known.usable if known else [])}
    for s in listed:
        cases.setdefault(s["use_case"], None)
    points = {n: sources.ask("monitoring_api", partial(_latest, n)) for n in cases}
    limits = {
        n: sources.ask("monitoring_api", partial(data.drift_share_threshold, n)) for n in cases
    }
    return _tiles(
        cases,
        listed,
        uploaded=_uploaded(algorithms() or []),
        queues=queues() or {},
        counts={n: {k: f() for k, f in c.items()} for n, c in counts.items()},
        points={n: f() for n, f in points.items()},
        limits={n: f() for n, f in limits.items()},
        alerts=alerts(),
        jobs=jobs(),
        silent=sources.silent,
    )


def _latest(use_case: str) -> dict[str, Any]:
    path = f"/monitoring_api/use_cases/{use_case}/history/latest"
    found: dict[str, Any] = client("monitoring_api").request("GET", path)
    return found


def _service_counts(sources: Sources, service: str, now: datetime) -> dict[str, Callable[[], Any]]:
    def counts(since: datetime) -> dict[str, int]:
        params = {"service": service, "since": since.isoformat()}
        found: dict[str, int] = client("queue_manager").request(
            "GET", "/queue_manager/jobs/counts", params=params
        )
        return found

    def workers() -> int:
        params = {"service": service, "since": (now - WORKER_WINDOW).isoformat(), "limit": 10_000}
        jobs = client("queue_manager").request("GET", "/queue_manager/jobs", params=params)
        return len({(j.get("metadata") or {}).get("worker") for j in jobs} - {None})

    return {
        "minute": sources.ask("queue_manager", lambda: counts(now - RATE_WINDOW)),
        "hour": sources.ask("queue_manager", lambda: counts(now - FAILURE_WINDOW)),
        "workers": sources.ask("queue_manager", workers),
    }


def _uploaded(algorithms: list[catalog.Algorithm]) -> dict[tuple[str, int], datetime]:
    return {
        (a.name, v["version"]): v["uploaded_at"]
        for a in algorithms
        if a.name is not None
        for v in a.versions
        if v.get("version") is not None and v.get("uploaded_at") is not None
    }


def _tiles(
    cases: dict[str, UseCase | None],
    services: list[dict[str, Any]],
    *,
    uploaded: dict[tuple[str, int], datetime],
    queues: dict[str, QueueState],
    counts: dict[str, dict[str, Any]],
    points: dict[str, dict[str, Any] | None],
    limits: dict[str, float | None],
    alerts: list[dict[str, Any]] | None,
    jobs: list[dict[str, Any]] | None,
    silent: set[str],
) -> list[Tile]:
    tiles = []
    for name, definition in cases.items():
        task = definition.task.value if definition is not None else None
        own: list[dict[str, Any] | None] = [s for s in services if s["use_case"] == name]
        for service in own or [None]:
            tile = Tile(use_case=name, task=task)
            _use_case_figures(tile, points.get(name), limits.get(name))
            tile.alerts = [a for a in alerts or [] if a["use_case"] == name]
            tile.retraining = [j for j in jobs or [] if j["use_case"] == name and j["active"]]
            if service is None:
                tile.flag("amber", "no service predicts for this use case")
            else:
                tile.service = service["name"]
                _service_figures(tile, service, uploaded, queues, counts.get(tile.service, {}))
            judge(tile, silent=silent)
            tiles.append(tile)
    return tiles


def _use_case_figures(tile: Tile, point: dict[str, Any] | None, limit: float | None) -> None:
    if point is None:
        return
    values = {v["metric"]: v["value"] for v in point.get("values", []) if v["feature"] is None}
    tile.drift_share = values.get(DRIFT_SHARE)
    tile.drift_limit = limit
    tile.performance = performance(values)


def performance(values: dict[str, float]) -> Performance | None:
    """The primary metric of a history point's use-case-wide values: the one monitoring
    compares with its reference (`reference_<metric>`), else the first estimated one."""
    for name in sorted(values):
        if name.startswith(REFERENCE_PREFIX):
            metric = name.removeprefix(REFERENCE_PREFIX)
            return Performance(
                metric,
                values.get(metric),
                values[name],
                values.get(ESTIMATED_PREFIX + metric),
            )
    for name in sorted(values):
        if name.startswith(ESTIMATED_PREFIX):
            return Performance(name.removeprefix(ESTIMATED_PREFIX), None, None, values[name])
    return None


def _service_figures(
    tile: Tile,
    service: dict[str, Any],
    uploaded: dict[tuple[str, int], datetime],
    queues: dict[str, QueueState],
    counts: dict[str, Any],
) -> None:
    version = service.get("resolved_version")
    if version is not None:
        tile.model = f"{service['algorithm_name']} version {version}"
        tile.model_uploaded_at = uploaded.get((service["algorithm_name"], version))
    state = queues.get(service["name"])
    if state is not None:
        tile.waiting, tile.workers, tile.dead_letters = (
            state.waiting,
            state.workers,
            state.dead_letters,
        )
    minute, hour = counts.get("minute"), counts.get("hour")
    if minute is not None:
        tile.rate = (minute.get("finished", 0) + minute.get("failed", 0)) / RATE_WINDOW.seconds
    if hour is not None:
        tile.failed = hour.get("failed", 0)
        tile.done = hour.get("finished", 0) + tile.failed
    tile.recent_workers = counts.get("workers")


def judge(tile: Tile, *, silent: set[str]) -> None:
    """Set the tile's state and reasons from its figures (the rules, worst first)."""
    for alert in tile.alerts[:ALERTS_NAMED]:
        tile.flag("red", f"open alert: {alert['what']}")
    if len(tile.alerts) > ALERTS_NAMED:
        tile.flag("red", f"and {len(tile.alerts) - ALERTS_NAMED} more open alerts")
    if tile.service is not None:
        _judge_stream(tile)
    share, limit = tile.drift_share, tile.drift_limit
    if share is not None and limit is not None and share >= limit and not tile.alerts:
        tile.flag("amber", f"drift share {share:.2f} is at or above its alert line {limit:.2f}")
    for source in sorted(silent):
        tile.flag("amber", f"{source} is not answering: some figures are missing")
    if not tile.reasons:
        flowing = f"{tile.rate:.1f} messages/s" if tile.rate is not None else "no stream"
        tile.reasons.append(f"flowing at {flowing}; no open alerts")


def _judge_stream(tile: Tile) -> None:
    if tile.model is None:
        tile.flag("red", "no model version is bound: workers cannot predict")
    if tile.workers == 0 and tile.waiting:
        tile.flag("red", f"no worker is consuming: {tile.waiting} messages wait")
    elif tile.workers == 0:
        tile.flag("amber", "no worker is consuming (no message waits)")
    elif (
        tile.workers is not None
        and tile.recent_workers is not None
        and tile.workers < tile.recent_workers
    ):
        stopped = tile.recent_workers - tile.workers
        tile.flag(
            "amber",
            f"{stopped} of the {tile.recent_workers} workers active in the last "
            f"{WORKER_WINDOW.seconds} seconds stopped consuming",
        )
    if tile.failed and tile.done:
        share = tile.failed / tile.done
        words = f"{tile.failed} of {tile.done} messages failed in the last hour"
        tile.flag("red" if share > FAILED_SHARE_RED else "amber", words)
    if tile.dead_letters:
        letters = "dead letter waits" if tile.dead_letters == 1 else "dead letters wait"
        tile.flag("amber", f"{tile.dead_letters} {letters} to be looked at")
    if tile.rate == 0 and not tile.waiting and tile.workers:
        tile.flag("amber", f"no messages in the last {RATE_WINDOW.seconds} seconds")
