"""The `gits` command (Typer): the platform's everyday verbs over its APIs, with the
tokens and addresses of `.env`. Errors are one line that says what to do, and the exit
status is 1 for a refused request, 2 for a usage error, 3 when something is down."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from data_source.publisher import messages, publish_reliably
from gits_cli.platform import Platform, queue_states
from gits_cli.settings import broker_url, load_settings
from gits_common import csv_files, errors
from gits_common.lifecycle import stop_on_signals
from gits_common.registry import LATEST, VersionRef
from gits_common.schemas import USE_CASE_NAME_RULE, Table, Task, UseCase
from gits_common.settings import MissingSetting, Role
from ground_truth_collector.labels import attach_csv_labels
from ml_data_loader.loader import load as load_splits

T = TypeVar("T")
# Piped into a file or another program, tables are as wide as they need (up to 240
# characters), not cut to 80.
PIPED_WIDTH = 240
out = Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPED_WIDTH)

app = typer.Typer(
    name="gits",
    help="GITS from the command line: use cases from CSV files, training, binding, "
    "streaming, labels, reports and the platform's status. Addresses and tokens come from "
    "the environment, then .env (`make env` writes it).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
use_case_app = typer.Typer(
    help="Register, list, show and delete use cases.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(use_case_app, name="use-case")

EXIT_REFUSED, EXIT_DOWN = 1, 3
HINTS: dict[type[errors.GitsError], str] = {
    errors.Unavailable: "is the platform up? `make run` starts it; `gits status` says what is down",
    errors.DependencyFailed: "a service behind the one asked failed; `gits status` says which",
}


class ReportKind(StrEnum):
    """The monitoring reports (monitoring_api's `kind`)."""

    data_quality = "data_quality"
    data_drift = "data_drift"
    target_drift = "target_drift"
    prediction_drift = "prediction_drift"
    model_performance = "model_performance"


def main() -> None:
    """The `gits` entry point. An error no command foresaw is still one line (with
    GITS_DEBUG=1, its traceback too), exit status 1."""
    try:
        app()
    except Exception as exc:
        if os.environ.get("GITS_DEBUG"):
            raise
        err.print(
            f"gits: unexpected {type(exc).__name__}: {exc} (a bug: please report the command; "
            "GITS_DEBUG=1 shows where it happened)",
            markup=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_REFUSED)


def _fail(exc: errors.GitsError | MissingSetting) -> NoReturn:
    """Say what went wrong in one line (and what to do), and exit: 3 when something is
    down, else 1."""
    detail = exc.detail if isinstance(exc, errors.GitsError) else str(exc)
    err.print(f"gits: {detail}", markup=False, soft_wrap=True)
    hint = next((h for kind, h in HINTS.items() if isinstance(exc, kind)), None)
    if hint:
        err.print(f"  ({hint})", markup=False)
    raise typer.Exit(EXIT_DOWN if isinstance(exc, errors.Unavailable) else EXIT_REFUSED)


def _run(work: Callable[[Platform], Awaitable[T]], role: Role = Role.admin) -> T:
    """Run one command's work with the platform's clients (the token of `role`); a
    domain error or a missing setting ends the command with one line (`_fail`)."""

    async def go() -> T:
        async with Platform(load_settings(), role) as platform:
            return await work(platform)

    try:
        return asyncio.run(go())
    except (errors.GitsError, MissingSetting) as exc:
        _fail(exc)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


# --- status ---


@app.command()
def status() -> None:
    """Every service's health, each service's queue (messages, consumers, dead letters)
    and bound model version, and the newest alert per use case. Exit status 3 when
    something is down, or a service has no worker."""

    async def work(platform: Platform) -> bool:
        health = await platform.health()
        table = RichTable("part", "state", title="Services")
        for name, problem in health.items():
            table.add_row(name, "up" if problem is None else f"DOWN: {problem}")
        down = any(problem is not None for problem in health.values())
        broker_problem: str | None = None
        services = await platform.qm.services() if health["queue_manager"] is None else []
        try:
            queues = await queue_states([s.name for s in services])
        except errors.Unavailable as exc:
            broker_problem, queues = exc.detail, {}
        table.add_row("rabbitmq", "up" if broker_problem is None else f"DOWN: {broker_problem}")
        out.print(table)
        _print_services(services, queues)
        unserved = [n for n, q in queues.items() if q is not None and q.consumers == 0]
        for name in unserved:
            err.print(
                f"gits: service {name} has no worker (`gits worker {name}` starts some)",
                markup=False,
            )
        if health["ml_data_api"] is None and health["monitoring_api"] is None:
            await _print_alerts(platform)
        return down or broker_problem is not None or bool(unserved)

    if _run(work, Role.read):
        raise typer.Exit(EXIT_DOWN)


def _print_services(services: list[Any], queues: dict[str, Any]) -> None:
    table = RichTable(
        "service", "use case", "routing key", "model", "usable", "queued", "consumers",
        "dead letters", title="Workers' services",
    )  # fmt: skip
    for s in services:
        q = queues.get(s.name)
        usable = "-" if s.model_status is None else ("yes" if s.model_status.usable else "NO")
        counts = ("?", "?", "?") if q is None else (q.messages, q.consumers, q.dead_letters)
        table.add_row(
            s.name, s.use_case, s.routing_key, f"{s.algorithm_name}:{s.resolved_version}",
            usable, *map(str, counts),
        )  # fmt: skip
    out.print(table)


async def _print_alerts(platform: Platform) -> None:
    table = RichTable("use case", "newest alert", title="Alerts")
    for use_case in await platform.ml_data.use_cases():
        alert = await platform.newest_alert(use_case.name)
        text = (
            "none"
            if alert is None
            else f"{alert['time']}: {alert['metric']}"
            + (f" of {alert['feature']}" if alert.get("feature") else "")
            + f" = {alert['value']:.4g} (threshold {alert['threshold']:.4g})"
        )
        table.add_row(use_case.name, text)
    out.print(table)


# --- use cases ---


@use_case_app.command("create")
def use_case_create(
    name: Annotated[str, typer.Argument(help="the use case's name: " + USE_CASE_NAME_RULE)],
    from_csv: Annotated[Path, typer.Option(help="a CSV file of the use case's rows")],
    target: Annotated[str, typer.Option(help="the column the models predict")],
    task: Annotated[Task | None, typer.Option(help="default: inferred from the target")] = None,
    time_column: Annotated[
        str | None, typer.Option(help="the column of reading times, if the file has one")
    ] = None,
    normalize_names: Annotated[
        bool,
        typer.Option(
            help="map column names that break the naming rule to ones that keep it (and "
            "load later files with the original names)"
        ),
    ] = False,
    description: Annotated[str, typer.Option(help="what the use case is about")] = "",
    dry_run: Annotated[bool, typer.Option(help="show the inferred definition only")] = False,
) -> None:
    """Infer a use case's features and their types from a CSV file, show them, and
    register it. Column names must be a letter, then letters, digits or '_'."""
    try:
        inferred = csv_files.infer_use_case(
            name,
            from_csv,
            target=target,
            task=task.value if task else None,
            time_column=time_column,
            normalize_names=normalize_names,
            description=description,
        )
    except errors.GitsError as exc:
        _fail(exc)
    _print_definition(inferred.use_case)
    if dry_run:
        return

    async def work(platform: Platform) -> None:
        await platform.ml_data.register_use_case(inferred.use_case)

    _run(work)
    out.print(f"registered use case {name}")


def _print_definition(use_case: UseCase) -> None:
    table = RichTable("column", "in the file", "type", "role", title=f"Use case {use_case.name}")
    roles = [(c, "feature") for c in use_case.features]
    if use_case.target is not None:
        roles.append((use_case.target, f"target ({use_case.task.value})"))
    for column, role in roles:
        table.add_row(
            column.name, use_case.source_names.get(column.name, column.name), column.type, role
        )
    out.print(table)


@use_case_app.command("list")
def use_case_list() -> None:
    """Every registered use case, with its task and row counts."""

    async def work(platform: Platform) -> None:
        table = RichTable("use case", "task", "features", "target", "training", "testing",
                          "production", title="Use cases")  # fmt: skip
        for use_case in await platform.ml_data.use_cases():
            counts = await platform.ml_data.counts(use_case.name)
            table.add_row(
                use_case.name, use_case.task.value, str(len(use_case.features)),
                use_case.target.name if use_case.target else "-",
                *(str(counts.get(t.value, 0)) for t in Table),
            )  # fmt: skip
        out.print(table)

    _run(work, Role.read)


@use_case_app.command("show")
def use_case_show(name: str) -> None:
    """A use case's definition."""

    async def work(platform: Platform) -> UseCase:
        return await platform.ml_data.use_case(name)

    _print_definition(_run(work, Role.read))


@use_case_app.command("delete")
def use_case_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Delete a use case with all its rows (refused while a service uses it)."""
    if not yes:
        typer.confirm(f"Delete use case {name} and every row of its tables?", abort=True)

    async def work(platform: Platform) -> dict[str, Any]:
        return await platform.ml_data.delete_use_case(name)

    _run(work)
    out.print(f"deleted use case {name}")


# --- data ---


@app.command()
def load(
    name: str,
    training: Annotated[Path | None, typer.Option(help="CSV of training rows")] = None,
    testing: Annotated[Path | None, typer.Option(help="CSV of testing rows")] = None,
) -> None:
    """Load training and testing rows from CSV files. Loading a file again adds nothing:
    rows keep their message_id (the file's, or <file stem>-<line>)."""
    files = {t: p for t, p in ((Table.training, training), (Table.testing, testing)) if p}
    if not files:
        raise typer.BadParameter("give --training, --testing or both")

    async def work(platform: Platform) -> dict[Table, dict[str, int]]:
        use_case = await platform.ml_data.use_case(name)
        splits = {
            t: csv_files.read_rows(use_case, p, with_target=True, time_now=True)
            for t, p in files.items()
        }
        with _progress() as progress:
            bars = {
                t: progress.add_task(f"{t.value} rows", total=len(f)) for t, f in splits.items()
            }
            return await load_splits(
                platform.ml_data,
                use_case,
                splits,
                on_rows=lambda table, n: progress.advance(bars[table], n),
            )

    for table, total in _run(work).items():
        out.print(f"{table.value}: {total['inserted']} rows new, {total['skipped']} already there")


@app.command()
def publish(
    name: str,
    file: Annotated[Path, typer.Argument(help="CSV of the features (and message_id)")],
    rate: Annotated[float, typer.Option(min=0.001, help="messages a second")] = 1000.0,
    service: Annotated[
        str | None, typer.Option(help="whose routing key; default: the use case's only one")
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="wait until every message's prediction is stored")
    ] = True,
    wait_seconds: Annotated[float, typer.Option(help="how long to wait for them")] = 300.0,
) -> None:
    """Stream a CSV file's rows as sensor messages to a service's routing key, each
    confirmed by the broker, then wait for their predictions. Ids are the file's
    message_id column, else <file stem>-<line>; publishing a file again stores nothing
    twice."""

    async def work(platform: Platform) -> int:
        use_case = await platform.ml_data.use_case(name)
        bound = await platform.service_of(name, service)
        if bound.use_case != name:
            raise errors.InvalidInput(
                f"service {bound.name} serves use case {bound.use_case}, not {name}: its "
                "workers would refuse these readings"
            )
        frame = csv_files.read_rows(use_case, file, with_target=False, time_now=False)
        stream = messages(frame, use_case, routing_key=bound.routing_key, loop=False, run=None)
        with _progress() as progress:
            bar = progress.add_task(f"to {bound.routing_key}", total=len(frame))
            sent = await publish_reliably(
                broker_url(),
                stream,
                routing_key=bound.routing_key,
                rate=rate,
                count=0,
                stop=stop_on_signals(),
                on_sent=lambda n: progress.advance(bar, n),
            )
            if wait and sent == len(frame):
                stored = progress.add_task(f"predicted by {bound.name}", total=sent)
                await platform.wait_until_done(
                    bound.name,
                    frame["message_id"].tolist(),
                    lambda n: progress.advance(stored, n),
                    wait_seconds,
                )
        return sent

    out.print(f"published {_run(work, Role.runtime)} messages")


@app.command()
def labels(
    name: str, file: Annotated[Path, typer.Argument(help="CSV of message_id and the target")]
) -> None:
    """Attach ground truth to stored predictions from a CSV of message_id and the target
    column; the labelled rows join the training data."""

    async def work(platform: Platform) -> Any:
        return await attach_csv_labels(platform.ml_data, name, file)

    result = _run(work, Role.runtime)
    out.print(f"{result.labelled} predictions labelled; {result.unknown} ids not (yet) stored")


# --- models ---


@app.command()
def train(
    name: str,
    models: Annotated[
        str | None, typer.Option(help="PyCaret model ids to compare, e.g. lr,rf,lightgbm")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="select on, e.g. MAE or F1")] = None,
    bind: Annotated[
        str | None,
        typer.Option(help="a service to bind the new version to (created if it does not exist)"),
    ] = None,
    routing_key: Annotated[
        str | None, typer.Option(help="a new service's routing key; default: its name")
    ] = None,
    tune: Annotated[
        bool, typer.Option("--tune", help="tune the best model's hyperparameters (Optuna)")
    ] = False,
    trials: Annotated[
        int | None, typer.Option(min=1, max=500, help="with --tune: at most this many")
    ] = None,
    tune_seconds: Annotated[
        float | None,
        typer.Option(min=1, max=86400, help="with --tune: stop the search after this long"),
    ] = None,
    ensemble: Annotated[
        str | None, typer.Option(help="combine the best models: blend, stack, bagging, boosting")
    ] = None,
    fix_imbalance: Annotated[
        bool, typer.Option("--fix-imbalance", help="balance the classes with SMOTE")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the job")] = 1800.0,
) -> None:
    """Compare models on the training rows and register the best as a new version.
    With --bind: a new service is created on it; an existing service's model is
    replaced only if the new one beats it on the held-out rows (the champion stays
    otherwise, and `gits promote JOB` overrides). --tune, --ensemble and
    --fix-imbalance are retraining_api's `tune`, `ensemble` and `fix_imbalance`: it
    says which task each is for."""

    if tune_seconds is not None and not math.isfinite(tune_seconds):
        raise typer.BadParameter("must be a number of seconds", param_hint="--tune-seconds")

    async def work(platform: Platform) -> None:
        existing = await platform.service(bind) if bind else None
        body: dict[str, Any] = {"use_case": name, "requested_by": "gits"}
        if models:
            body["models"] = [m.strip() for m in models.split(",") if m.strip()]
        if metric:
            body["metric"] = metric
        if tune or trials is not None or tune_seconds is not None:
            search = {"trials": trials, "time_budget_seconds": tune_seconds}
            body["tune"] = {k: v for k, v in search.items() if v is not None}
        if ensemble:
            body["ensemble"] = ensemble
        if fix_imbalance:
            body["fix_imbalance"] = True
        if existing is not None:
            body |= {"service": existing.name, "auto_promote": True}
        job = await platform.start_retraining(body)
        out.print(f"retraining job {job['id']} queued")
        finished = await _follow(platform, job["id"], timeout)
        _print_result(finished)
        result = finished["result"]
        if existing is not None:
            decision = result.get("decision") or {}
            out.print(decision.get("reason", "no decision"))
            return
        record = await platform.register(job["id"], None)
        out.print(f"registered {record['name']}:{record['version']}")
        if bind:
            bound = await platform.bind(bind, record["name"], record["version"], routing_key)
            out.print(f"service {bound.name} (routing key {bound.routing_key}) uses it")

    _run(work)


async def _follow(platform: Platform, job_id: int, timeout: float) -> dict[str, Any]:
    with _progress() as progress:
        bar = progress.add_task("queued", total=100)

        def show(job: dict[str, Any]) -> None:
            progress.update(
                bar,
                completed=job.get("percent") or 0,
                description=job.get("stage") or job["status"],
            )

        job = await platform.wait_for_job(job_id, show, timeout)
    if job["status"] == "failed":
        raise errors.InvalidInput(f"retraining job {job_id} failed: {job.get('error')}")
    return job


def _print_result(job: dict[str, Any]) -> None:
    result = job["result"]
    metric = result["metric"]
    challenger = result["retrained_model_results"] or {}
    champion = result.get("previous_model_results") or {}
    table = RichTable("", "model", metric, title=f"Job {job['id']}: held-out rows")
    table.add_row("challenger", str(challenger.get("Model")), _number(challenger.get(metric)))
    if champion:
        label = result.get("champion") or "champion"
        table.add_row(label, str(champion.get("Model")), _number(champion.get(metric)))
    out.print(table)
    tuning, ensemble, threshold = (result.get(k) for k in ("tuning", "ensemble", "threshold"))
    if tuning:
        out.print(
            f"tuned {tuning['model']}: {tuning['trials']} trials in {tuning['seconds']:.0f} s "
            f"(stopped by {tuning['stopped_by']}), kept the {tuning['kept']} model",
            markup=False,
        )
    if ensemble:
        members = ", ".join(map(str, ensemble["models"]))
        out.print(f"ensemble: {ensemble['method']} of {members}", markup=False)
    if threshold:
        out.print(
            f"anomaly threshold {_number(threshold['chosen'])} ({threshold['rule']})",
            markup=False,
        )


def _number(value: Any) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
    )


@app.command()
def job(job_id: int) -> None:
    """A retraining job's state and result."""

    async def work(platform: Platform) -> dict[str, Any]:
        return await platform.job(job_id)

    found = _run(work, Role.read)
    out.print(f"job {job_id}: {found['status']} ({found.get('stage') or '-'})")
    if found.get("result"):
        _print_result(found)
    if found.get("error"):
        out.print(f"error: {found['error']}", markup=False)


@app.command()
def promote(job_id: int) -> None:
    """Replace a service's model with a finished retraining job's challenger."""

    async def work(platform: Platform) -> dict[str, Any]:
        return await platform.promote(job_id)

    done = _run(work)
    out.print(f"{done['service']}: {done['from_version']} -> {done['to_version']}")


@app.command()
def rollback(service: str) -> None:
    """Bind a service back to the model version its newest promotion replaced."""

    async def work(platform: Platform) -> dict[str, Any]:
        return await platform.rollback(service)

    done = _run(work)
    out.print(f"{done['service']}: {done['from_version']} -> {done['to_version']}")


@app.command()
def models(
    use_case: Annotated[str | None, typer.Option(help="only this use case's")] = None,
) -> None:
    """Every model version, and the services that use it."""

    async def work(platform: Platform) -> list[dict[str, Any]]:
        return await platform.algorithms()

    table = RichTable("model", "use case", "task", "uploaded", "by", "used by", title="Models")
    for a in _run(work, Role.read):
        if use_case and a["use_case"] != use_case:
            continue
        table.add_row(
            f"{a['name']}:{a['version']}", a["use_case"], a["task"], str(a["uploaded_at"])[:19],
            a["uploaded_by"], ", ".join(a["services"]) or "-",
        )  # fmt: skip
    out.print(table)


@app.command("bind")
def bind_service(
    service: str,
    model: Annotated[str, typer.Argument(help="ALGORITHM or ALGORITHM:VERSION (default latest)")],
    routing_key: Annotated[
        str | None, typer.Option(help="a new service's routing key; default: its name")
    ] = None,
) -> None:
    """Create a service on a model version, or rebind it; its workers swap models
    without a restart."""
    algorithm, _, version = model.partition(":")
    if version and not version.isdigit() and version != "latest":
        raise typer.BadParameter(f"{version!r} is not a version number", param_hint="MODEL")

    ref: VersionRef = int(version) if version.isdigit() else LATEST

    async def work(platform: Platform) -> Any:
        return await platform.bind(service, algorithm, ref, routing_key)

    bound = _run(work)
    out.print(
        f"service {bound.name} (routing key {bound.routing_key}) uses "
        f"{bound.algorithm_name}:{bound.resolved_version}"
    )


@app.command()
def worker(
    service: str,
    replicas: Annotated[int, typer.Option(min=1, max=32, help="worker processes")] = 1,
) -> None:
    """Run worker replicas for a service until Ctrl-C (`make run`'s serve the demo's
    service, SERVICE_NAME). A service that does not exist yet is waited for."""
    env = {**os.environ, "SERVICE_NAME": service}
    command = [sys.executable, "-m", "workers"]
    processes = [subprocess.Popen(command, env=env) for _ in range(replicas)]
    out.print(f"{replicas} worker(s) for {service}; Ctrl-C stops them")

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:
        stop()
        codes = [process.wait() for process in processes]
    if any(code not in (0, -signal.SIGTERM) for code in codes):
        raise typer.Exit(EXIT_REFUSED)


# --- monitoring ---


@app.command()
def report(
    name: str,
    kind: Annotated[ReportKind, typer.Argument()] = ReportKind.data_drift,
    last: Annotated[int | None, typer.Option(help="the newest N production rows")] = None,
    json_: Annotated[bool, typer.Option("--json", help="the whole summary as JSON")] = False,
) -> None:
    """A monitoring report of the newest production rows against the training rows."""

    async def work(platform: Platform) -> dict[str, Any]:
        return await platform.report(name, kind.value, last)

    found = _run(work, Role.read)
    if json_:
        out.print_json(json.dumps(found, default=str))
        return
    summary = {k: v for k, v in found.items() if not isinstance(v, dict | list)}
    for key, value in summary.items():
        out.print(f"{key}: {value}", markup=False)


@app.command()
def performance(
    name: str,
    last: Annotated[int | None, typer.Option(min=1, help="the newest N production rows")] = None,
    json_: Annotated[bool, typer.Option("--json", help="the whole answer as JSON")] = False,
) -> None:
    """Performance of the use case's model on its newest rows: estimated from the model's
    own outputs (CBPE for classification, DLE for regression) beside the realised, once
    labels came; for classification also the confusion matrix."""

    async def work(platform: Platform) -> tuple[dict[str, Any], dict[str, Any] | None]:
        estimated = await platform.task_view(name, "performance/estimated", last)
        matrix = None
        if estimated["task"] == "classification":
            matrix = await platform.task_view(name, "classification", last)
        return estimated, matrix

    estimated, matrix = _run(work, Role.read)
    if json_:
        out.print_json(json.dumps({"estimated": estimated, "classification": matrix}, default=str))
        return
    if estimated.get("reason"):
        out.print(f"no estimate: {estimated['reason']}", markup=False)
    else:
        table = RichTable(
            "metric", f"estimated ({estimated['method']})", "realised",
            title=f"Performance of {name}",
        )  # fmt: skip
        realised = estimated.get("realised") or {}
        for metric in estimated["metrics"]:
            value = (estimated.get("estimated") or {}).get(metric)
            table.add_row(metric, _number(value), _number(realised.get(metric)))
        out.print(table)
    if matrix is not None:
        confusion = matrix["confusion_matrix"]
        grid = RichTable(
            "true \\ predicted", *map(str, confusion["labels"]), title="Confusion matrix"
        )
        for label, counts in zip(confusion["labels"], confusion["counts"], strict=True):
            grid.add_row(str(label), *(f"{c:g}" for c in counts))
        out.print(grid)


@app.command()
def anomalies(
    name: str,
    last: Annotated[int | None, typer.Option(min=1, help="the newest N production rows")] = None,
) -> None:
    """An anomaly use case's flagged events (their time spans), its anomaly rate against
    the alert threshold, and the flags' realised precision and recall once labelled."""

    async def work(platform: Platform) -> dict[str, Any]:
        return await platform.task_view(name, "anomalies", last)

    found = _run(work, Role.read)
    rate, limit = found.get("anomaly_rate"), found.get("alert_threshold")
    state = "ALERTING" if found["alerting"] else "ok"
    out.print(
        f"{found['flagged']} of {found['rows']} rows flagged (anomaly rate {_number(rate)}, "
        f"alert above {_number(limit)}: {state}); threshold {_number(found.get('threshold'))}",
        markup=False,
    )
    realised = found.get("realised")
    if realised:
        out.print(
            f"on {realised['rows']} labelled rows: precision {_number(realised['precision'])}, "
            f"recall {_number(realised['recall'])}, F1 {_number(realised['f1'])}",
            markup=False,
        )
    table = RichTable("start", "end", "rows", "max score", title=f"Anomalies of {name}")
    for event in found["events"][-30:]:
        table.add_row(
            str(event["start"])[:19], str(event["end"])[:19], str(event["rows"]),
            _number(event.get("max_score")),
        )  # fmt: skip
    out.print(table)


@app.command()
def history(
    name: str,
    run: Annotated[bool, typer.Option("--run", help="compute a point now first")] = False,
) -> None:
    """A use case's metric history (drift share, performance), or why it is empty."""

    async def work(platform: Platform) -> dict[str, Any]:
        return await platform.history(name, run=run)

    found = _run(work, Role.admin if run else Role.read)
    if not found["values"]:
        out.print(f"no history yet: {found.get('reason')}", markup=False)
        return
    table = RichTable("time", "metric", "feature", "value", title=f"History of {name}")
    for v in found["values"][-30:]:
        table.add_row(
            str(v["time"])[:19], v["metric"], v.get("feature") or "-", _number(v["value"])
        )
    out.print(table)
