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

from psycopg2.extensions import connection as Connection

from gits_common import errors
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.logs import log_context
from gits_common.postgres import Database
from gits_common.registry import model_label
from gits_common.schemas import Table, UseCase
from gits_common.settings import Role, configure_logging
from gits_ml import modeling
from retraining_api import datasets, store, training
from retraining_api.artifacts import Artifacts
from retraining_api.promotion import Promoter
from retraining_api.schemas import JobKind, JobRead, PromotionRead
from retraining_api.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
WARM_UP_MODULES = (
    "pycaret.regression",
    "pycaret.classification",
    "pycaret.anomaly",
    "explainerdashboard",
)
AUTO_PROMOTER = "auto-promote"  # the `requested_by` of promotions a job makes itself


def warm_up() -> None:
    """Import PyCaret and explainerdashboard once, so that no job waits for the import."""
    configure_logging("retraining_api")
    for module in WARM_UP_MODULES:
        importlib.import_module(module)


def run(settings: Settings, kind: JobKind, job_id: int) -> None:
    """Run one job to its end, every line it logs naming the job; any failure is
    recorded on the job, never raised."""
    with log_context(job_id=job_id):
        _run(settings, kind, job_id)


def _run(settings: Settings, kind: JobKind, job_id: int) -> None:
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

    def clients(self, *, promoting: bool = False) -> tuple[MlDataClient, QueueManagerClient]:
        """Fresh API clients (each asyncio.run needs its own). A job reads rows and model
        files with the read and runtime roles; only its auto-promotion (registering and
        binding the challenger) holds the admin role."""
        queue_manager_role = Role.admin if promoting else Role.runtime
        return (
            MlDataClient(self.settings.ml_data_api_url, self.settings.tokens[Role.read]),
            QueueManagerClient(
                self.settings.queue_manager_url, self.settings.tokens[queue_manager_role]
            ),
        )


# --- Retraining ---


@dataclass(frozen=True)
class RetrainingInputs:
    """What one retraining job works on."""

    use_case: UseCase
    data: datasets.Data
    champion: training.Champion | None  # None: the service has no model bound


def _retrain(context: JobContext) -> None:
    job, settings = context.job, context.settings
    context.progress("reading training and held-out rows", 5)
    inputs = asyncio.run(_retraining_inputs(context))
    choice = choose(job.request, inputs.use_case, settings)
    started = time.monotonic()
    outcome = training.retrain(
        inputs.use_case,
        inputs.data.training,
        inputs.data.holdout,
        champion=inputs.champion,
        choice=choice,
        fold=settings.fold,
        n_jobs=settings.n_jobs,
        budget_seconds=job.request.get("time_budget_seconds"),
        progress=context.progress,
        testing_rows=inputs.data.testing_rows,
    )
    context.progress("saving the challenger", 95)
    content = modeling.to_bytes(outcome.challenger)
    context.artifacts.write(context.artifacts.challenger(job.id), content)
    result = _result(inputs, outcome, choice, content, time.monotonic() - started)
    if job.request.get("auto_promote"):
        result["decision"] = _decide(job, choice, inputs, outcome, settings.promote_margin)
        if result["decision"]["promoted"]:
            result["promotion"] = _auto_promote(context, result["decision"])
    context.store(lambda conn: store.finish_job(conn=conn, job_id=job.id, result=result))


def choose(request: dict[str, Any], use_case: UseCase, settings: Settings) -> training.Choice:
    """The models, metric and building options of a retraining request (a
    RetrainingCreate as JSON); `errors.InvalidInput` naming the field that is wrong."""
    return training.choose(
        use_case.task,
        request.get("models"),
        request.get("metric"),
        list(settings.default_models),
        tune=request.get("tune"),
        ensemble=request.get("ensemble"),
        fix_imbalance=bool(request.get("fix_imbalance")),
    )


def _result(
    inputs: RetrainingInputs,
    outcome: training.Outcome,
    choice: training.Choice,
    content: bytes,
    seconds: float,
) -> dict[str, Any]:
    """The job's result: the original's two blocks, and how they were made. A metric that
    could not be computed is None in its block, with the reason in `unscored`; a champion
    that could not be loaded or predict has its reason in `champion_error`. `tuning`,
    `ensemble` and `threshold` (anomaly models) say how the challenger was built, each
    None when not done."""
    champion = outcome.champion_scores
    return {
        "retrained_model_results": outcome.challenger_scores.results,
        "previous_model_results": champion.results if champion else None,
        "champion": inputs.champion.label if inputs.champion else None,
        "champion_error": champion.error if champion else None,
        "unscored": {
            "challenger": outcome.challenger_scores.missing,
            "champion": champion.missing if champion else {},
        },
        "metric": choice.metric,
        "higher_is_better": choice.higher_is_better,
        "models": choice.models,
        "task": inputs.use_case.task.value,
        "fix_imbalance": choice.fix_imbalance,
        "tuning": outcome.details.get("tuning"),
        "ensemble": outcome.details.get("ensemble"),
        "threshold": outcome.details.get("threshold"),
        "training_rows": len(inputs.data.training),
        "holdout_rows": len(inputs.data.holdout),
        "holdout": inputs.data.parts,
        "leaderboard": outcome.leaderboard,
        "challenger_sha256": modeling.sha256(content),
        "training_seconds": round(seconds, 1),
        "decision": None,
        "promotion": None,
    }


def _decide(
    job: JobRead,
    choice: training.Choice,
    inputs: RetrainingInputs,
    outcome: training.Outcome,
    default_margin: float,
) -> dict[str, Any]:
    """Whether auto-promotion goes ahead, and why (training.decide)."""
    margin = job.request.get("promote_margin")
    margin = default_margin if margin is None else margin
    if job.service is None:
        reason = "not promoted: no service to promote to"
        return {"promoted": False, "basis": "no_service", "reason": reason, "margin": margin}
    return training.decide(
        choice,
        challenger=outcome.challenger_scores,
        champion=outcome.champion_scores,
        champion_label=inputs.champion.label if inputs.champion else None,
        margin=margin,
    )


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
    ml_data, qm = context.clients(promoting=True)
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
        data = await datasets.read(ml_data, use_case, settings)
        # The same refusal the API gives before the job is queued: the data may have
        # changed since, and a job must never train on data it cannot judge.
        training.check_data(
            use_case,
            data.training,
            data.holdout,
            fold=settings.fold,
            testing_rows=data.testing_rows,
            fix_imbalance=bool(job.request.get("fix_imbalance")),
        )
        champion = await _champion(qm, job.service)
    finally:
        await asyncio.gather(ml_data.close(), qm.close())
    return RetrainingInputs(use_case, data, champion)


async def _champion(qm: QueueManagerClient, service: str | None) -> training.Champion | None:
    """The model the service uses now, loaded; None when the service has none. A model
    that cannot be fetched or loaded is a champion with its `error` (the comparison is
    then missing, and nothing is auto-promoted); only an outage fails the job."""
    if service is None:
        return None
    bound = await qm.service(service)
    version = bound.resolved_version
    if version is None:
        return None
    name = model_label(bound.algorithm_name, version)
    try:
        _, content = await qm.verified_model(bound.algorithm_name, version)
        return training.Champion(name, modeling.from_bytes(content))
    except errors.Unavailable:
        raise
    except Exception as exc:  # a missing or damaged file, a pickle this PyCaret cannot load
        log.warning("champion %s could not be loaded: %r", name, exc)
        return training.Champion(name, None, f"could not be loaded: {_reason(exc)}")


# --- Explainer dashboards ---


def _explain(context: JobContext) -> None:
    from retraining_api import explainer  # explainerdashboard only in job processes

    job = context.job
    context.progress("reading the model and the rows", 5)
    use_case, pipeline, rows = asyncio.run(_explainer_inputs(context))
    table, max_rows = job.request["data"], job.request["max_rows"]
    page = explainer.build_dashboard(
        pipeline,
        datasets.typed_frame(use_case, rows),
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
    """An exception as a job's error: GITS's own errors and refusals of the data read as
    they are, anything else with its type."""
    text = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    plain = isinstance(exc, errors.GitsError | ValueError | LookupError)
    return text if plain else f"{type(exc).__name__}: {text}"
