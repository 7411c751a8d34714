"""retraining_api's logic behind the routes: checks a request can succeed before it
becomes a job, starts jobs, finds cached explainers, promotes and rolls back."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from psycopg2.extensions import connection as Connection

from gits_common import errors
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.postgres import Database
from gits_common.registry import AlgorithmRead
from gits_common.schemas import Table, UseCase
from retraining_api import datasets, jobs, store, training
from retraining_api.artifacts import Artifacts
from retraining_api.promotion import Promoter
from retraining_api.runner import Runner
from retraining_api.schemas import (
    ExplainerCreate,
    JobKind,
    JobRead,
    JobStatus,
    PromotionRead,
    RetrainingCreate,
)
from retraining_api.settings import Settings

T = TypeVar("T")


class RetrainingService:
    """Jobs, promotions and explainers of every use case."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        ml_data: MlDataClient,
        qm: QueueManagerClient,
        runner: Runner,
    ) -> None:
        self.settings = settings
        self.db = db
        self.ml_data = ml_data
        self.qm = qm
        self.runner = runner
        self.artifacts = Artifacts(settings.artifacts_dir)
        self.promoter = Promoter(db, qm, ml_data, self.artifacts)

    def prepare(self) -> bool:
        """Create the tables if missing (False: no TimescaleDB needed here)."""
        self.db.run(lambda conn: store.ensure_schema(conn=conn))
        return False

    def recover(self) -> int:
        """At start: fail the jobs a stopped process left queued or running."""
        self.prepare()
        return self.db.run(lambda conn: store.fail_interrupted(conn=conn))

    async def _store(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.to_thread(self.db.run, work)

    # --- Retraining ---

    async def start_retraining(self, body: RetrainingCreate) -> JobRead:
        """A queued retraining job, or the 4xx that says why it could not succeed: an
        unknown use case, service, model or metric, or data on which a retraining result
        would mean nothing (`training.check_data`)."""
        use_case = await self.ml_data.use_case(body.use_case)
        request = body.model_dump(mode="json")
        jobs.choose(request, use_case, self.settings)
        service = await self._champion_service(use_case, body.service)
        if body.auto_promote and service is None:
            raise errors.InvalidInput(
                f"auto_promote needs a service: no service uses {use_case.name}"
            )
        await self._check_enough_rows(use_case)
        # The job's own rows and checks, so that data the job would refuse (a single
        # class, too few rows of a class to cross-validate) is a 422 now, not a failed job.
        data = await datasets.read(self.ml_data, use_case, self.settings)
        training.check_data(
            use_case,
            data.training,
            data.holdout,
            fold=self.settings.fold,
            testing_rows=data.testing_rows,
            fix_imbalance=body.fix_imbalance,
        )
        request |= {"service": service}
        job = await self._store(
            lambda conn: store.insert_job(
                conn=conn,
                kind=JobKind.retraining,
                use_case=use_case.name,
                service=service,
                request=request,
                requested_by=body.requested_by,
            )
        )
        assert job is not None  # retraining jobs have no cache key to collide on
        self.runner.submit(JobKind.retraining, job.id)
        return job

    async def _champion_service(self, use_case: UseCase, name: str | None) -> str | None:
        """The service whose model is the champion: the named one, or the use case's only."""
        if name is not None:
            bound = await self.qm.service(name)
            if bound.use_case != use_case.name:
                raise errors.InvalidInput(
                    f"service {name} serves use case {bound.use_case}, not {use_case.name}"
                )
            return name
        services = await self.qm.services()
        names = sorted(s.name for s in services if s.use_case == use_case.name)
        if len(names) > 1:
            raise errors.InvalidInput(
                f"use case {use_case.name} has several services {names}: name one as 'service'"
            )
        return names[0] if names else None

    async def _check_enough_rows(self, use_case: UseCase) -> None:
        counts = await self.ml_data.counts(use_case.name)
        least = self.settings.min_training_rows
        if counts.get("training", 0) < least:
            raise errors.InvalidInput(
                f"too little data: use case {use_case.name} has {counts.get('training', 0)} "
                f"training rows, at least {least} are needed (RETRAINING_MIN_TRAINING_ROWS)"
            )
        held_out = counts.get("testing", 0) + counts.get("production", 0)
        if held_out < self.settings.min_holdout_rows:
            raise errors.InvalidInput(
                f"too little held-out data: {held_out} testing and production rows, at least "
                f"{self.settings.min_holdout_rows} are needed (RETRAINING_MIN_HOLDOUT_ROWS)"
            )

    async def jobs(
        self, kind: JobKind, *, use_case: str | None, service: str | None, limit: int
    ) -> list[JobRead]:
        """Jobs of a kind, newest first."""
        return await self._store(
            lambda conn: store.list_jobs(
                conn=conn, kind=kind, use_case=use_case, service=service, limit=limit
            )
        )

    async def job(self, kind: JobKind, job_id: int) -> JobRead:
        """One job of a kind, or `NotFound`."""
        job = await self._store(lambda conn: store.get_job(conn=conn, job_id=job_id))
        if job is None or job.kind is not kind:
            raise errors.NotFound(f"no {kind.value} job {job_id}")
        return job

    async def active_job(self, use_case: str) -> JobRead | None:
        """A queued or running retraining job of the use case, if any."""
        found = await self._store(
            lambda conn: store.list_jobs(
                conn=conn, kind=JobKind.retraining, use_case=use_case, active_only=True, limit=1
            )
        )
        return found[0] if found else None

    # --- Promotions ---

    async def promote(self, job_id: int, requested_by: str) -> PromotionRead:
        """Promote a finished job's challenger."""
        return await self.promoter.promote(job_id, requested_by)

    async def register(
        self, job_id: int, requested_by: str, algorithm_name: str | None
    ) -> AlgorithmRead:
        """Register a finished job's challenger as a new algorithm version, unbound."""
        return await self.promoter.register(job_id, requested_by, algorithm_name)

    async def rollback(self, service: str, requested_by: str) -> PromotionRead:
        """Undo the service's newest promotion."""
        return await self.promoter.rollback(service, requested_by)

    async def promotions(self, *, service: str | None, use_case: str | None) -> list[PromotionRead]:
        """The promotion history, newest first."""
        return await self._store(
            lambda conn: store.list_promotions(conn=conn, service=service, use_case=use_case)
        )

    # --- Explainers ---

    async def start_explainer(
        self, body: ExplainerCreate, *, use_case_name: str | None = None
    ) -> tuple[JobRead, bool]:
        """The explainer job for this model and data, and whether it was already there;
        `use_case_name`, when given, must be the model's use case."""
        model = await self._model(body)
        if use_case_name is not None and model["use_case"] != use_case_name:
            raise errors.InvalidInput(
                f"model {model['model']} belongs to use case {model['use_case']}, "
                f"not {use_case_name}"
            )
        # An anomaly model without an exact attribution is refused by the job, which
        # loads the model and names it (explainer.check_explainable).
        use_case = await self.ml_data.use_case(model["use_case"])
        newest = await self.ml_data.read_rows(use_case.name, body.data, last=1)
        if not newest:
            raise errors.InvalidInput(f"the {body.data.value} table of {use_case.name} is empty")
        max_rows = body.max_rows or self.settings.explainer_rows
        request = model | {"data": body.data.value, "max_rows": max_rows}
        key = _cache_key(request, newest[-1], await self.ml_data.counts(use_case.name), body.data)
        return await self._explainer_job(use_case, request, key, body.requested_by)

    async def _explainer_job(
        self, use_case: UseCase, request: dict[str, Any], key: str, requested_by: str
    ) -> tuple[JobRead, bool]:
        def insert_or_find(conn: Connection) -> tuple[JobRead, bool]:
            found = store.find_job_by_cache_key(conn=conn, cache_key=key)
            if found is not None:
                return found, True
            job = store.insert_job(
                conn=conn,
                kind=JobKind.explainer,
                use_case=use_case.name,
                service=None,
                request=request,
                requested_by=requested_by,
                cache_key=key,
            )
            if job is None:  # an identical request won the race
                raced = store.find_job_by_cache_key(conn=conn, cache_key=key)
                assert raced is not None
                return raced, True
            return job, False

        job, cached = await self._store(insert_or_find)
        if not cached:
            self.runner.submit(JobKind.explainer, job.id)
        return job, cached

    async def _model(self, body: ExplainerCreate) -> dict[str, Any]:
        """The model an explainer request names: its label, use case and checksum."""
        if body.job_id is not None:
            job = await self.job(JobKind.retraining, body.job_id)
            if job.status is not JobStatus.finished or not job.result:
                raise errors.Conflict(
                    f"retraining job {job.id} is {job.status.value}, not finished"
                )
            return {
                "model": f"challenger of retraining job {job.id}",
                "job_id": job.id,
                "use_case": job.use_case,
                "sha256": job.result["challenger_sha256"],
            }
        assert body.model_name is not None  # the schema demands one of the two
        record = await self.qm.algorithm(body.model_name, body.model_version)
        return {
            "model": record.label,
            "model_name": record.name,
            "model_version": record.version,
            "use_case": record.use_case,
            "sha256": record.sha256,
        }

    async def explainer_page(self, job_id: int) -> Path:
        """The finished explainer page's file."""
        job = await self.job(JobKind.explainer, job_id)
        if job.status is not JobStatus.finished:
            detail = f": {job.error}" if job.error else f" ({job.stage}, {job.percent}%)"
            raise errors.Conflict(f"explainer job {job_id} is {job.status.value}{detail}")
        path = self.artifacts.explainer(job_id)
        if not path.exists():
            raise errors.NotFound(f"explainer page of job {job_id} is gone from {path}")
        return path


def _cache_key(
    request: dict[str, Any], newest: dict[str, Any], counts: dict[str, int], table: Table
) -> str:
    """Same model file, same sampling, same rows (count and newest row): same page."""
    identity = {
        "sha256": request["sha256"],
        "use_case": request["use_case"],
        "data": table.value,
        "max_rows": request["max_rows"],
        "rows": counts.get(table.value),
        "newest": newest.get("message_id"),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
