"""The pipeline end to end (RabbitMQ -> worker -> PostgreSQL rows and queue_manager
jobs), several ways in one run, each on its own service, queue and production table:

1. the original's way: `benchmarks.original_worker`, one message at a time, one job and
   one row over HTTP and one PyCaret `predict_model` call per message (a backlog of
   GITS_BENCH_ORIGINAL_MESSAGES, since it does a few messages a second);
2. ours at full speed: `python -m workers`, GITS_BENCH_MESSAGES published as fast as
   publisher confirms allow while the workers consume (the publisher shares the cores);
3. ours draining a backlog: the same count published first, then the workers started;
4. ours at a fixed GITS_BENCH_RATE msg/s for GITS_BENCH_RATE_SECONDS (latency);
5. the bare ceiling: `benchmarks.bare_ceiling`, batches predicted with the pipeline's
   own `.predict` and COPYed into a production table, no jobs and no HTTP, draining the
   same backlog as (3);
6. memory: ours at GITS_BENCH_SOAK_RATE msg/s for GITS_BENCH_SOAK_SECONDS, the resident
   memory of every worker and of queue_manager sampled each second.

Each runs GITS_BENCH_REPLICAS processes (2). For (1), (2), (4) and (6) the clock starts
once every replica has loaded its model and scored warm-up messages; for the backlogs
(3, 5) it starts when the first replica begins consuming (each loads its model before
that). It stops when queue_manager counts every job of the run finished or failed (the
ceiling, which has no jobs: when every row is committed). Latency is the row's
`inserted_at` (PostgreSQL's `now()`, the start of the inserting transaction) minus the
message's `timestamp`, set when it was published. GITS_BENCH_QUICK=1 (or `python -m
benchmarks.pipeline_throughput --quick`) shrinks every count for a check of the benchmark
itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from psycopg2.extensions import connection as Connection

from benchmarks import measuring, traffic
from benchmarks.processes import CONSUMING, MODEL_LOADED, Replicas
from benchmarks.support import bearer, running_service, service_env
from gits_common.settings import config
from gits_ml import modeling
from gits_ml.demo import PRODUCT_QUALITY, DemoConfig, generate

ARTIFACT = Path("test-artifacts/bench/pipeline.json")
ORIGINAL, FULL, BACKLOG = "original", "ours_full_speed", "ours_backlog"
RATE, CEILING, SOAK = "ours_fixed_rate", "ceiling", "ours_memory"
POLL_SECONDS = 0.1
WARM_UP_SECONDS = 300.0


@dataclass(frozen=True)
class Plan:
    """How much each scenario sends; from GITS_BENCH_* settings."""

    messages: int  # what (2), (3) and (5) send
    rate: float  # msg/s of (4)
    rate_seconds: float  # how long (4) publishes
    original_messages: int  # the backlog of (1)
    replicas: int  # processes in every scenario
    soak_rate: float  # msg/s of (6)
    soak_seconds: float  # how long (6) publishes


def load_plan(*, quick: bool = False) -> Plan:
    """The plan from GITS_BENCH_* settings; `quick` (or GITS_BENCH_QUICK) shrinks the
    defaults to a check of about two minutes."""
    quick = quick or config("GITS_BENCH_QUICK", default=False, cast=bool)
    return Plan(
        messages=config("GITS_BENCH_MESSAGES", default=2000 if quick else 50_000, cast=int),
        rate=config("GITS_BENCH_RATE", default=200.0, cast=float),
        rate_seconds=config("GITS_BENCH_RATE_SECONDS", default=10.0 if quick else 60.0, cast=float),
        original_messages=config(
            "GITS_BENCH_ORIGINAL_MESSAGES", default=40 if quick else 200, cast=int
        ),
        replicas=config("GITS_BENCH_REPLICAS", default=2, cast=int),
        soak_rate=config("GITS_BENCH_SOAK_RATE", default=500.0, cast=float),
        soak_seconds=config(
            "GITS_BENCH_SOAK_SECONDS", default=20.0 if quick else 600.0, cast=float
        ),
    )


@dataclass(frozen=True)
class Bench:
    """One scenario's names: its use case (and production table), service, routing key."""

    tag: str

    @property
    def name(self) -> str:
        """The use case's and the service's name."""
        return f"bench_{self.tag}"

    @property
    def routing_key(self) -> str:
        """The routing key the service is bound to."""
        return f"bench.{self.tag}"


def run(plan: Plan | None = None) -> dict[str, Any]:
    """Every scenario's figures (messages/s, latency ms, lost, duplicated, peak RSS MiB
    per process, CPU seconds per part), and ours over the original and the ceiling; also
    written to test-artifacts/bench/pipeline.json."""
    plan = plan or load_plan()
    demo = generate(DemoConfig(history_hours=600, production_minutes=2000))
    model, _ = modeling.train(PRODUCT_QUALITY, demo.training, include=["lightgbm"])
    content = modeling.to_bytes(model)
    pool = demo.production[PRODUCT_QUALITY.feature_names].to_dict("records")
    counts = {
        ORIGINAL: (plan.original_messages, None),
        FULL: (plan.messages, None),
        BACKLOG: (plan.messages, None),
        RATE: (max(1, round(plan.rate * plan.rate_seconds)), plan.rate),
        CEILING: (plan.messages, None),
        SOAK: (max(1, round(plan.soak_rate * plan.soak_seconds)), plan.soak_rate),
    }
    result: dict[str, Any] = {"plan": asdict(plan), "scenarios": {}}
    for kind, (count, rate) in counts.items():
        result["scenarios"][kind] = _scenario(kind, plan, content, pool, count, rate=rate)
        _write(result)  # what is done so far survives a later failure
    scenarios = result["scenarios"]
    ours = scenarios[FULL]["messages_per_s"]
    result["ours_over_original"] = ours / max(scenarios[ORIGINAL]["messages_per_s"], 1e-9)
    # both drain a backlog: the same work, the same start
    result["ours_over_ceiling"] = scenarios[BACKLOG]["messages_per_s"] / max(
        scenarios[CEILING]["messages_per_s"], 1e-9
    )
    _write(result)
    return result


def _write(result: dict[str, Any]) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(result, indent=2))


@dataclass(frozen=True)
class Platform:
    """What one scenario runs against: its services (no queue_manager for the ceiling),
    an admin HTTP client, the database, and its names."""

    bench: Bench
    ml: str
    qm: str | None
    http: httpx.Client
    db: Connection

    def done(self) -> int:
        """Messages done so far: jobs finished or failed, or (no queue_manager) rows."""
        if self.qm is None:
            return measuring.row_count(self.db, self.bench.name)
        counts = _job_counts(self.http, self.qm, self.bench.name)
        return counts.get("finished", 0) + counts.get("failed", 0)


def _scenario(
    kind: str,
    plan: Plan,
    content: bytes,
    pool: list[dict[str, float]],
    count: int,
    *,
    rate: float | None = None,
) -> dict[str, Any]:
    """Start what the scenario needs, time `count` messages (published first for a
    backlog, else once the replicas are warm), read back."""
    with _platform(kind) as platform, _consumers(kind, platform, content) as (argv, env):
        ids = traffic.message_ids(f"m-{platform.bench.tag}", count)
        if kind in BACKLOGS:
            publishing = asyncio.run(traffic.publish(platform.bench.routing_key, ids, pool))
        with Replicas(kind, argv, env, plan.replicas) as replicas:
            parts = {"publisher": [os.getpid()], "replicas": replicas.pids}
            for service, url in (("ml_data_api", platform.ml), ("queue_manager", platform.qm)):
                if url and (pid := measuring.listener(url)):
                    parts[service] = [pid]
            if kind in BACKLOGS:
                # from the first replica consuming, as the clock (a later one's start-up counts)
                replicas.wait_for(CONSUMING, WARM_UP_SECONDS, anyone=True)
                cpu_before = measuring.cpu_seconds(parts)
                timed = _drained(platform, count, publishing, replicas)
            else:
                _warm_up(replicas, platform, pool)
                cpu_before = measuring.cpu_seconds(parts)
                with measuring.MemoryTrack(
                    [*replicas.pids, *parts.get("queue_manager", [])]
                ) as memory:
                    timed = _timed(platform, pool, ids, rate, replicas)
            cpu = measuring.cpu_seconds(parts)
            return {
                **timed,
                **_read_back(platform, count),
                "peak_rss_mb": replicas.peak_rss_mb(),
                "cpu_seconds": {k: round(cpu[k] - cpu_before[k], 1) for k in cpu},
                **({} if kind in BACKLOGS else {"memory": memory.summary()}),
            }


@contextmanager
def _platform(kind: str) -> Iterator[Platform]:
    """ml_data_api (and queue_manager, but for the ceiling) on the test database, with
    a fresh use case; its tables dropped after."""
    bench = Bench(uuid.uuid4().hex[:8])
    with ExitStack() as stack:
        ml = stack.enter_context(running_service("ml_data_api", "ML_DATA_API_PORT"))
        qm = None
        if kind != CEILING:
            # queue_manager checks an upload against its use case in this ml_data_api
            stack.enter_context(mock.patch.dict(os.environ, {"ML_DATA_API_URL": ml}))
            qm = stack.enter_context(running_service("queue_manager", "QUEUE_MANAGER_PORT"))
        http = stack.enter_context(httpx.Client(headers=bearer(), timeout=120))
        db = stack.enter_context(measuring.bench_database())
        use_case = PRODUCT_QUALITY.model_copy(update={"name": bench.name})
        http.post(
            f"{ml}/ml_data_api/use_cases", json=use_case.model_dump(mode="json")
        ).raise_for_status()
        stack.callback(measuring.drop_use_case, db, bench.name)
        yield Platform(bench, ml, qm, http, db)


def _read_back(platform: Platform, count: int) -> dict[str, Any]:
    """What became of the run's messages: rows, latency (ms), lost, duplicated, jobs by
    status, messages left in each queue, and latency second by second."""
    bench, db = platform.bench, platform.db
    prefix, time_column = f"m-{bench.tag}-", PRODUCT_QUALITY.time_column
    rows = measuring.stored(db, bench.name, prefix, time_column)
    return {
        **rows,
        "lost": count - rows["distinct"],
        "duplicated": rows["rows"] - rows["distinct"],
        "jobs": _job_counts(platform.http, platform.qm, bench.name) if platform.qm else {},
        "queues": asyncio.run(traffic.queue_depths(bench.name)),
        "by_second": measuring.timeline(db, bench.name, prefix, time_column),
    }


@contextmanager
def _consumers(
    kind: str, platform: Platform, content: bytes
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The command and environment of the scenario's processes, its service bound (or
    its queue declared) first; the service and queues removed after."""
    bench, qm = platform.bench, platform.qm
    with tempfile.TemporaryDirectory(prefix="gits-bench-") as folder:
        if qm is None:
            model_file = Path(folder) / "model.pkl"
            model_file.write_bytes(content)
            asyncio.run(traffic.declare_queue(bench.name, bench.routing_key))
            argv = [sys.executable, "-m", "benchmarks.bare_ceiling"]
            env = service_env(
                SERVICE_NAME=bench.name,
                BENCH_ROUTING_KEY=bench.routing_key,
                BENCH_MODEL_FILE=str(model_file),
                BENCH_TABLE=f"{bench.name}_production",
            )
        else:
            _bind(platform.http, qm, bench, content)
            module = "benchmarks.original_worker" if kind == ORIGINAL else "workers"
            argv = [sys.executable, "-m", module]
            env = service_env(
                SERVICE_NAME=bench.name, QUEUE_MANAGER_URL=qm, ML_DATA_API_URL=platform.ml
            )
        try:
            yield argv, env
        finally:
            if qm is not None:
                with suppress(httpx.HTTPError):
                    platform.http.delete(f"{qm}/queue_manager/services/{bench.name}")
                    platform.http.delete(f"{qm}/queue_manager/algorithms/{bench.name}/versions/1")
            asyncio.run(traffic.delete_queues(bench.name))


def _bind(http: httpx.Client, qm: str, bench: Bench, content: bytes) -> None:
    form = {
        "name": bench.name,
        "use_case": bench.name,
        "task": PRODUCT_QUALITY.task.value,
        "features": json.dumps(PRODUCT_QUALITY.feature_names),
    }
    http.post(
        f"{qm}/queue_manager/algorithms", data=form, files={"file": ("m.pkl", content)}
    ).raise_for_status()
    http.put(
        f"{qm}/queue_manager/services/{bench.name}",
        json={"routing_key": bench.routing_key, "algorithm_name": bench.name},
    ).raise_for_status()


def _warm_up(replicas: Replicas, platform: Platform, pool: list[dict[str, float]]) -> None:
    """Until every replica consumes and has loaded its model, and every warm-up message
    (two a replica a round, dispatched round-robin) is done."""
    if not replicas.wait_for(CONSUMING, WARM_UP_SECONDS):
        raise RuntimeError(f"not every {replicas.name} process started consuming")
    bench = platform.bench
    sent, deadline = 0, time.monotonic() + WARM_UP_SECONDS
    while True:
        ids = traffic.message_ids(f"w-{bench.tag}-{sent}", 2 * len(replicas.pids))
        asyncio.run(traffic.publish(bench.routing_key, ids, pool))
        sent += len(ids)
        if replicas.wait_for(MODEL_LOADED, 10.0):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every {replicas.name} process loaded its model")
    while platform.done() < sent:
        replicas.check_running()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{replicas.name}: warm-up messages not done")
        time.sleep(POLL_SECONDS)


def _timed(
    platform: Platform,
    pool: list[dict[str, float]],
    ids: list[str],
    rate: float | None,
    replicas: Replicas,
) -> dict[str, Any]:
    """Publish a message per id and wait until they are all done (or the time allowed
    runs out: `complete` false). Seconds from the first publish."""
    before = platform.done()
    started = time.perf_counter()
    publishing = asyncio.run(traffic.publish(platform.bench.routing_key, ids, pool, rate=rate))
    finished = _wait_done(platform, len(ids), before, started, replicas)
    seconds = time.perf_counter() - started
    return _figures(len(ids), rate, finished, publishing, seconds)


def _drained(
    platform: Platform, count: int, publishing: float, replicas: Replicas
) -> dict[str, Any]:
    """Wait until the backlog of `count` published before the replicas started is done.
    Seconds from the moment the first replica began consuming (each has loaded its
    model by then)."""
    if not replicas.wait_for(CONSUMING, WARM_UP_SECONDS):
        raise RuntimeError(f"not every {replicas.name} process started consuming")
    started = replicas.first_logged(CONSUMING)
    finished = _wait_done(platform, count, 0, started, replicas)
    seconds = time.perf_counter() - started
    return _figures(count, None, finished, publishing, seconds, concurrent=False)


def _wait_done(
    platform: Platform, count: int, before: int, started: float, replicas: Replicas
) -> int:
    """Messages done beyond `before` once `count` are, or when the time allowed since
    `started` (a perf_counter reading) runs out."""
    allowed = 120 + count / 25
    while (finished := platform.done() - before) < count:
        replicas.check_running()
        if time.perf_counter() - started > allowed:
            break
        time.sleep(POLL_SECONDS)
    return finished


def _figures(
    count: int,
    rate: float | None,
    finished: int,
    publishing: float,
    seconds: float,
    *,
    concurrent: bool = True,
) -> dict[str, Any]:
    """A scenario's timing figures; `concurrent`: published while the replicas ran."""
    return {
        "published": count,
        "rate": rate,
        "done": finished,
        "complete": finished >= count,
        "publish_seconds": round(publishing, 3),
        "publish_per_s": count / publishing,
        "seconds": round(seconds, 3),
        "messages_per_s": finished / seconds,
        # done within 5% of the last confirm: the publisher set the pace
        "publisher_bound": concurrent
        and rate is None
        and seconds - publishing < max(0.25, 0.05 * seconds),
    }


def _job_counts(http: httpx.Client, qm: str, service: str) -> dict[str, int]:
    response = http.get(f"{qm}/queue_manager/jobs/counts", params={"service": service})
    response.raise_for_status()
    counts: dict[str, int] = response.json()
    return counts


TITLES = {
    ORIGINAL: "(1) original: predict_model, 3 HTTP calls/msg",
    FULL: "(2) ours, full speed, publishing meanwhile",
    BACKLOG: "(3) ours, draining a backlog",
    RATE: "(4) ours, fixed rate",
    CEILING: "(5) ceiling: .predict + COPY, no jobs/HTTP",
    SOAK: "(6) ours, memory over time",
}
# Scenarios whose messages are all queued before their replicas start.
BACKLOGS = (BACKLOG, CEILING)


def report(result: dict[str, Any]) -> str:
    """The table for the terminal."""
    plan = result["plan"]
    lines = [
        f"pipeline end to end, demo model (LightGBM), {plan['replicas']} processes each, "
        "real RabbitMQ and PostgreSQL",
        f"  {'':<46} {'messages':>8} {'msg/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
        f" {'lost':>4} {'dup':>4} {'peak RSS MiB':>12} {'publish/s':>9}",
    ]
    for kind, title in TITLES.items():
        s = result["scenarios"][kind]
        if s["rate"]:
            title = f"{title}, {s['rate']:g} msg/s"
        rate = f"{s['messages_per_s']:,.1f}{'*' if s['publisher_bound'] else ' '}"
        rss = "/".join(f"{m:.0f}" for m in s["peak_rss_mb"])
        lines.append(
            f"  {title:<46} {s['published']:>8,} {rate:>9} {s['p50_ms']:>7,.0f}"
            f" {s['p95_ms']:>7,.0f} {s['p99_ms']:>7,.0f} {s['lost']:>4} {s['duplicated']:>4}"
            f" {rss:>12} {s['publish_per_s']:>9,.0f}"
            + ("" if s["complete"] else f"  INCOMPLETE: {s['done']:,} done in time")
        )
    memory = result["scenarios"][SOAK]["memory"]
    lines += [
        f"  ours / original: {result['ours_over_original']:,.0f}x (2 over 1)    "
        f"ours / ceiling: {100 * result['ours_over_ceiling']:.0f}% (3 over 5: both drain "
        "the same backlog)",
        f"  memory over (6), {plan['soak_seconds']:g} s at {plan['soak_rate']:g} msg/s, MiB "
        "start -> end (growth): "
        + ", ".join(
            f"{m['start_mb']:.0f} -> {m['end_mb']:.0f} ({m['growth_pct']:+.1f}%)"
            for m in memory.values()
        )
        + " (workers, then queue_manager)",
        "  * done within 5% of the publisher's last confirm: the publisher (this process,",
        "    on the same cores) set the pace.",
        "  msg/s: first publish (backlogs: first replica consuming) to the last job finished",
        "  (ceiling: last row committed), every model loaded before. Latency: message",
        "  timestamp (set at publish) -> row inserted_at (PostgreSQL now(): the inserting",
        "  transaction's start); (1), (3), (5) are backlogs, so theirs is mostly time in",
        "  the queue.",
        "  CPU seconds in the timed window (postgres, rabbitmq: the whole machine's):",
    ]
    for kind in TITLES:
        cpu = result["scenarios"][kind]["cpu_seconds"]
        lines.append(f"    {kind:<16} " + "  ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """`python -m benchmarks.pipeline_throughput [--quick]`: this benchmark alone."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_throughput")
    parser.add_argument("--quick", action="store_true", help="small counts, for a check")
    result = run(load_plan(quick=parser.parse_args(argv).quick))
    print(report(result))
    print(f"(written to {ARTIFACT})")


if __name__ == "__main__":
    main(sys.argv[1:])
