"""Promotion and rollback: the only code that changes which model a service uses.
queue_manager owns algorithms and services; this registers the challenger there as a
new version, rebinds the service (queue_manager announces it, workers swap without a
restart) and keeps the history."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from gits_common import errors
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.postgres import Database
from gits_common.registry import AlgorithmRead, ServiceRead, model_label
from gits_ml import modeling
from retraining_api import store
from retraining_api.artifacts import Artifacts
from retraining_api.schemas import JobKind, JobRead, JobStatus, PromotionRead


class Promoter:
    """Promotes challengers and rolls services back, one change per service at a time."""

    def __init__(
        self, db: Database, qm: QueueManagerClient, ml_data: MlDataClient, artifacts: Artifacts
    ) -> None:
        self.db = db
        self.qm = qm
        self.ml_data = ml_data
        self.artifacts = artifacts
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def promote(
        self, job_id: int, requested_by: str, *, by_the_job: bool = False
    ) -> PromotionRead:
        """Register a finished job's challenger and bind its service to it (`by_the_job`:
        the job itself auto-promotes before it reports finished)."""
        job = await self._job(job_id)
        service = job.service
        if service is None:
            raise errors.Conflict(f"job {job_id} has no service to promote its challenger to")
        async with self._locks[service]:
            job = await self._job(job_id)  # another promotion may have won the lock first
            _check_promotable(job, by_the_job=by_the_job)
            current = await self.qm.service(service)
            name = current.algorithm_name
            version = _registered_version(job, name)
            if version is None:
                version = (await self._upload(job, name, requested_by)).version
            await self._bind(current, name, version, requested_by)
            promotion = await self._record(
                action="promote",
                service=service,
                use_case=job.use_case,
                from_version=current.model_label,
                to_version=model_label(name, version),
                job_id=job.id,
                requested_by=requested_by,
                metrics=_metrics(job),
            )
            patch = {"promotion": promotion.model_dump(mode="json")}
            await asyncio.to_thread(
                self.db.run, lambda conn: store.merge_result(conn=conn, job_id=job_id, patch=patch)
            )
            return promotion

    async def register(
        self, job_id: int, requested_by: str, algorithm_name: str | None
    ) -> AlgorithmRead:
        """Register a finished job's challenger as the next version of `algorithm_name`
        (default: its service's algorithm, else an algorithm named after the use case),
        binding nothing. Raises `Conflict` for a job not finished, already registered or
        promoted, or whose file is gone; `NotFound` for an unknown job."""
        async with self._locks[f"job {job_id}"]:
            job = await self._job(job_id)
            _check_promotable(job, by_the_job=False)
            if job.result and job.result.get("registered"):
                done = job.result["registered"]["label"]
                raise errors.Conflict(f"job {job_id}'s challenger was already registered as {done}")
            if algorithm_name is None and job.service is not None:
                algorithm_name = (await self.qm.service(job.service)).algorithm_name
            record = await self._upload(job, algorithm_name or job.use_case, requested_by)
            registered = {"name": record.name, "version": record.version, "label": record.label}
            patch = {"registered": registered}
            await asyncio.to_thread(
                self.db.run, lambda conn: store.merge_result(conn=conn, job_id=job_id, patch=patch)
            )
            return record

    async def _upload(self, job: JobRead, name: str, requested_by: str) -> AlgorithmRead:
        """The job's challenger uploaded to queue_manager as the next version of `name`."""
        # Reading a challenger file (up to tens of MB) must not hold up the event loop.
        content = await asyncio.to_thread(self._challenger, job)
        use_case = await self.ml_data.use_case(job.use_case)
        return await self.qm.upload_algorithm(
            name=name,
            content=content,
            use_case=use_case,
            description=_description(job),
            uploaded_by=requested_by,
            sha256=modeling.sha256(content),
        )

    async def rollback(self, service: str, requested_by: str) -> PromotionRead:
        """Bind the service back to the version its newest promotion replaced."""
        async with self._locks[service]:
            current = await self.qm.service(service)
            now = current.model_label
            if now is None:
                raise errors.Conflict(f"service {service} is bound to a version that is gone")
            undone = await asyncio.to_thread(
                self.db.run,
                lambda conn: store.promotion_to(conn=conn, service=service, version=now),
            )
            if undone is None or undone.from_version is None:
                raise errors.Conflict(
                    f"nothing to roll back: {service} uses {now}, which no promotion put there"
                )
            name, _, version = undone.from_version.rpartition(":")
            await self._bind(current, name, int(version), requested_by)
            return await self._record(
                action="rollback",
                service=service,
                use_case=current.use_case,
                from_version=now,
                to_version=undone.from_version,
                job_id=undone.job_id,
                requested_by=requested_by,
                metrics=undone.metrics,
            )

    async def _job(self, job_id: int) -> JobRead:
        job = await asyncio.to_thread(
            self.db.run, lambda conn: store.get_job(conn=conn, job_id=job_id)
        )
        if job is None or job.kind is not JobKind.retraining:
            raise errors.NotFound(f"no retraining job {job_id}")
        return job

    def _challenger(self, job: JobRead) -> bytes:
        path = self.artifacts.challenger(job.id)
        if not path.exists():
            raise errors.Conflict(f"job {job.id}'s challenger file is gone from {path}")
        return path.read_bytes()

    async def _bind(self, current: ServiceRead, name: str, version: int, requested_by: str) -> None:
        await self.qm.bind_service(
            current.name,
            routing_key=current.routing_key,
            algorithm_name=name,
            algorithm_version=version,
            use_case=current.use_case,
            updated_by=requested_by,
        )

    async def _record(self, **fields: Any) -> PromotionRead:
        return await asyncio.to_thread(
            self.db.run, lambda conn: store.insert_promotion(conn=conn, **fields)
        )


def _check_promotable(job: JobRead, *, by_the_job: bool) -> None:
    """Conflict unless the job finished (or is auto-promoting) and was not promoted."""
    if job.status is not JobStatus.finished and not by_the_job:
        raise errors.Conflict(
            f"job {job.id} is {job.status.value}: only a finished job's challenger can be "
            "promoted or registered"
        )
    if job.result and job.result.get("promotion"):
        done = job.result["promotion"]["to_version"]
        raise errors.Conflict(f"job {job.id}'s challenger was already promoted as {done}")


def _registered_version(job: JobRead, name: str) -> int | None:
    """The version the job's challenger was registered as under `name`, if it was."""
    registered = (job.result or {}).get("registered") or {}
    return int(registered["version"]) if registered.get("name") == name else None


def _description(job: JobRead) -> str:
    result = job.result or {}
    metric = result.get("metric")
    value = (result.get("retrained_model_results") or {}).get(metric)
    model = (result.get("retrained_model_results") or {}).get("Model", "challenger")
    return f"retraining job {job.id}: {model}, {metric} {value} on the held-out rows"


def _metrics(job: JobRead) -> dict[str, Any]:
    result = job.result or {}
    return {
        "metric": result.get("metric"),
        "challenger": result.get("retrained_model_results"),
        "champion": result.get("previous_model_results"),
    }
