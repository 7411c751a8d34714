"""What runs inside a job process: PyCaret and SHAP are CPU-bound for seconds to a
minute, so they run in processes of their own and the API keeps answering. A job reads
its data through ml_data_api, its models through queue_manager, and records progress,
result or error on its row."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
from psycopg2.extensions import connection as Connection

from gits_common import errors, modeling
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.postgres import Database
from gits_common.schemas import Table, UseCase
from gits_common.settings import configure_logging
from retraining_api import store, training
from retraining_api.artifacts import Artifacts
from retraining_api.promotion import Promoter, label
from retraining_api.schemas import JobKind, JobRead, PromotionRead
from retraining_api.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
WARM_UP_MODULES = ("pycaret.regression", "pycaret.classification", "explainerdashboard")
AUTO_PROMOTER = "auto-promote"  # the `requested_by` of promotions a job makes itself


def warm_up() -> None:
    """Import PyCaret and explainerdashboard once, so that no job waits for the import."""
    configure_logging()
    for module in WARM_UP_MODULES:
        importlib.import_module(module)


def run(settings: Settings, kind: JobKind, job_id: int) -> None:
    """Run one job to its end; any failure is recorded on the job, never raised."""
    context = JobContext.open(settings, job_id)
    try:
        if kind is JobKind.retraining:
            _retrain(context)
        else:
            _explain(context)
    except Exception as exc:
        log.exception("job %d failed", job_id)
        reason = _reason(exc)
        context.store(lambda conn: store.fail_job(conn=conn, job_id=job_id, error=reason))
    finally:
        context.db.close()


@dataclass
class JobContext:
    """One job's row, settings and connections."""

    settings: Settings
    job: JobRead
    db: Database
    artifacts: Artifacts

    @classmethod
    def open(cls, settings: Settings, job_id: int) -> JobContext:
        """The context of a stored job."""
        db = Database(settings.postgres.dsn("retraining_api-job"), minconn=1, maxconn=1)
        job = db.run(lambda conn: store.get_job(conn=conn, job_id=job_id))
        if job is None:
            raise LookupError(f"job {job_id} is not stored")
        return cls(settings, job, db, Artifacts(settings.artifacts_dir))

    def store(self, work: Callable[[Connection], T]) -> T:
        """Run a store function on the job's database."""
        return self.db.run(work)

    def progress(self, stage: str, percent: int) -> None:
        """Record the job's stage."""
        log.info("job %d: %s (%d%%)", self.job.id, stage, percent)
        self.store(
            lambda conn: store.set_progress(
                conn=conn, job_id=self.job.id, stage=stage, percent=percent
            )
        )

    def clients(self) -> tuple[MlDataClient, QueueManagerClient]:
        """Fresh API clients (each asyncio.run needs its own)."""
        token = self.settings.api_token
        return (
            MlDataClient(self.settings.ml_data_api_url, token),
            QueueManagerClient(self.settings.queue_manager_url, token),
        )


# --- Retraining ---


@dataclass(frozen=True)
class RetrainingInputs:
    """What one retraining job works on."""

    use_case: UseCase
    training: pd.DataFrame
    holdout: pd.DataFrame
    holdout_parts: dict[str, int]
    champion: Any | None
    champion_label: str | None


def _retrain(context: JobContext) -> None:
    job, settings = context.job, context.settings
    context.progress("reading training and held-out rows", 5)
    inputs = asyncio.run(_retraining_inputs(context))
    choice = training.choose(
        inputs.use_case.task,
        job.request.get("models"),
        job.request.get("metric"),
        list(settings.default_models),
    )
    started = time.monotonic()
    outcome = training.retrain(
        inputs.use_case,
        inputs.training,
        inputs.holdout,
        champion=inputs.champion,
        choice=choice,
        fold=settings.fold,
        n_jobs=settings.n_jobs,
        budget_seconds=job.request.get("time_budget_seconds"),
        progress=context.progress,
    )
    context.progress("saving the challenger", 95)
    content = modeling.to_bytes(outcome.challenger)
    context.artifacts.write(context.artifacts.challenger(job.id), content)
    result = _result(inputs, outcome, choice, content, time.monotonic() - started)
    if job.request.get("auto_promote"):
        result["decision"] = _decide(job, choice, result, settings.promote_margin)
        if result["decision"]["promoted"]:
            result["promotion"] = _auto_promote(context, result["decision"])
    context.store(lambda conn: store.finish_job(conn=conn, job_id=job.id, result=result))


def _result(
    inputs: RetrainingInputs,
    outcome: training.Outcome,
    choice: training.Choice,
    content: bytes,
    seconds: float,
) -> dict[str, Any]:
    """The job's result: the original's two blocks, and how they were made."""
    return {
        "retrained_model_results": outcome.challenger_results,
        "previous_model_results": outcome.champion_results,
        "champion": inputs.champion_label,
        "metric": choice.metric,
        "higher_is_better": choice.higher_is_better,
        "models": choice.models,
        "training_rows": len(inputs.training),
        "holdout_rows": len(inputs.holdout),
        "holdout": inputs.holdout_parts,
        "leaderboard": outcome.leaderboard,
        "challenger_sha256": modeling.sha256(content),
        "training_seconds": round(seconds, 1),
        "decision": None,
        "promotion": None,
    }


def _decide(
    job: JobRead, choice: training.Choice, result: dict[str, Any], default_margin: float
) -> dict[str, Any]:
    """Whether auto-promotion goes ahead, and why."""
    margin = job.request.get("promote_margin")
    margin = default_margin if margin is None else margin
    if job.service is None:
        return {"promoted": False, "reason": "no service to promote to"}
    challenger = result["retrained_model_results"].get(choice.metric)
    champion = (result["previous_model_results"] or {}).get(choice.metric)
    wins = training.better(choice, challenger, champion, margin)
    if result["previous_model_results"] is None:
        reason = f"the service has no champion; challenger {choice.metric} {challenger}"
    else:
        verb = "beats" if wins else "does not beat"
        reason = (
            f"challenger {choice.metric} {challenger} {verb} champion {champion} "
            f"by the {margin:.0%} margin"
        )
    return {"promoted": wins, "reason": reason, "margin": margin}


def _auto_promote(context: JobContext, decision: dict[str, Any]) -> dict[str, Any] | None:
    """Promote the job's own challenger; a failure turns the decision, not the job."""
    context.progress("promoting the challenger", 97)
    try:
        return asyncio.run(_promote(context)).model_dump(mode="json")
    except errors.GitsError as exc:
        decision["promoted"] = False
        decision["reason"] += f", but the promotion failed: {exc.detail}"
        return None


async def _promote(context: JobContext) -> PromotionRead:
    ml_data, qm = context.clients()
    try:
        promoter = Promoter(context.db, qm, ml_data, context.artifacts)
        return await promoter.promote(context.job.id, AUTO_PROMOTER, by_the_job=True)
    finally:
        await asyncio.gather(ml_data.close(), qm.close())


async def _retraining_inputs(context: JobContext) -> RetrainingInputs:
    job, settings = context.job, context.settings
    ml_data, qm = context.clients()
    try:
        use_case = await ml_data.use_case(job.use_case)
        read = {"last": settings.max_rows, "limit": settings.max_rows}
        train_rows, test_rows, labelled = await asyncio.gather(
            ml_data.read_rows(use_case.name, Table.training, **read),
            ml_data.read_rows(use_case.name, Table.testing, **read),
            ml_data.read_rows(use_case.name, Table.production, labelled=True, **read),
        )
        champion, champion_label = await _champion(qm, job.service)
    finally:
        await asyncio.gather(ml_data.close(), qm.close())
    training_frame, holdout, parts = split(
        use_case, train_rows, test_rows, labelled, settings.holdout_fraction
    )
    _check_sizes(training_frame, holdout, settings)
    return RetrainingInputs(use_case, training_frame, holdout, parts, champion, champion_label)


def split(
    use_case: UseCase,
    training_rows: list[dict[str, Any]],
    testing_rows: list[dict[str, Any]],
    labelled_rows: list[dict[str, Any]],
    fraction: float,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Training rows, and held-out rows: the testing table plus the newest `fraction` of
    the labelled production rows, which are taken out of training (ml_data_api copies
    labelled production rows into the training table)."""
    kept = round(len(labelled_rows) * fraction)
    recent = labelled_rows[len(labelled_rows) - kept :] if kept else []
    held_ids = {row["message_id"] for row in recent}
    train = frame(use_case, [r for r in training_rows if r.get("message_id") not in held_ids])
    holdout = frame(use_case, testing_rows + recent)
    return train, holdout, {"testing": len(testing_rows), "production": len(recent)}


def frame(use_case: UseCase, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The labelled rows' feature and target columns, numbers as numbers."""
    assert use_case.target is not None
    data = typed_frame(use_case, rows)
    return data.dropna(subset=[use_case.target.name]).reset_index(drop=True)


def typed_frame(use_case: UseCase, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Message ids, features and the target (where rows have one), numbers as numbers."""
    typed = [*use_case.features, *([use_case.target] if use_case.target else [])]
    columns = ["message_id"] + [c.name for c in typed]
    data = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    for column in typed:
        if column.type.value in ("float", "int"):
            data[column.name] = pd.to_numeric(data[column.name])
    return data


def _check_sizes(train: pd.DataFrame, holdout: pd.DataFrame, settings: Settings) -> None:
    if len(train) < settings.min_training_rows:
        raise ValueError(
            f"too little data: {len(train)} training rows, at least "
            f"{settings.min_training_rows} needed (RETRAINING_MIN_TRAINING_ROWS)"
        )
    if len(holdout) < settings.min_holdout_rows:
        raise ValueError(
            f"too little held-out data: {len(holdout)} testing and labelled production rows, "
            f"at least {settings.min_holdout_rows} needed (RETRAINING_MIN_HOLDOUT_ROWS)"
        )


async def _champion(qm: QueueManagerClient, service: str | None) -> tuple[Any | None, str | None]:
    """The model the service uses now, loaded, and its label; (None, None) without one."""
    if service is None:
        return None, None
    bound = await qm.service(service)
    version = bound.get("resolved_version")
    if version is None:
        return None, None
    _, content = await qm.verified_model(bound["algorithm_name"], version)
    return modeling.from_bytes(content), label(bound["algorithm_name"], version)


# --- Explainer dashboards ---


def _explain(context: JobContext) -> None:
    from retraining_api import explainer  # explainerdashboard only in job processes

    job = context.job
    context.progress("reading the model and the rows", 5)
    use_case, pipeline, rows = asyncio.run(_explainer_inputs(context))
    table, max_rows = job.request["data"], job.request["max_rows"]
    page = explainer.build_dashboard(
        pipeline,
        typed_frame(use_case, rows),
        use_case=use_case,
        title=f"{job.request['model']} on {use_case.name}",
        data_name=table,
        max_rows=max_rows,
        progress=context.progress,
    )
    context.artifacts.write(context.artifacts.explainer(job.id), page.html.encode())
    result = {
        "model": job.request["model"],
        "data": table,
        "rows_explained": page.rows_explained,
        "rows_available": page.rows_available,
        "shap": page.shap,
        "seconds": round(page.seconds, 2),
    }
    context.store(lambda conn: store.finish_job(conn=conn, job_id=job.id, result=result))


async def _explainer_inputs(context: JobContext) -> tuple[UseCase, Any, list[dict[str, Any]]]:
    job, settings = context.job, context.settings
    ml_data, qm = context.clients()
    try:
        use_case = await ml_data.use_case(job.use_case)
        if job.request.get("job_id") is not None:
            content = context.artifacts.challenger(job.request["job_id"]).read_bytes()
        else:
            version = job.request["model_version"]
            _, content = await qm.verified_model(job.request["model_name"], version)
        read = {"last": settings.max_rows, "limit": settings.max_rows}
        rows = await ml_data.read_rows(use_case.name, Table(job.request["data"]), **read)
    finally:
        await asyncio.gather(ml_data.close(), qm.close())
    return use_case, modeling.from_bytes(content), rows


def _reason(exc: Exception) -> str:
    text = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    return text if isinstance(exc, ValueError | LookupError) else f"{type(exc).__name__}: {text}"
