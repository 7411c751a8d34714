"""What queue_manager does, apart from HTTP: model files, service bindings and jobs."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from gits_common import errors
from gits_common.amqp import ModelChanged
from gits_common.clients import MlDataClient
from gits_common.errors import Conflict, InvalidInput, NotFound, TooLarge
from gits_common.jobs import (
    FINAL,
    MAX_BATCH_JOBS,
    JobChange,
    JobCounts,
    JobCreate,
    JobRead,
    JobRecord,
    JobStatus,
    JobUpdate,
)
from gits_common.registry import (
    LATEST,
    AlgorithmRead,
    ModelCheck,
    ModelStatus,
    ModelStatusReport,
    NamedServiceCreate,
    ServiceCreate,
    ServiceRead,
    VersionRef,
)
from gits_common.schemas import Table, UseCase
from gits_ml.modeling import ModelFailed
from queue_manager import validation
from queue_manager.events import ModelEvents
from queue_manager.sandbox import Sandbox
from queue_manager.schemas import AlgorithmCreate
from queue_manager.store import CHUNK_BYTES, JobKey, Session, Store, StoredAlgorithm, StoredService

log = logging.getLogger(__name__)


class QueueManager:
    """Algorithms, services and jobs in a store (PostgreSQL or MongoDB); model changes
    announced on RabbitMQ; uploads checked against their use case (read from ml_data_api)
    in a sandbox. Store calls block, so the async methods run them in a worker thread."""

    def __init__(
        self,
        db: Store,
        events: ModelEvents,
        *,
        ml_data: MlDataClient,
        sandbox: Sandbox,
        max_model_bytes: int,
    ) -> None:
        self.db = db
        self.events = events
        self.ml_data = ml_data
        self.sandbox = sandbox
        self.max_model_bytes = max_model_bytes

    # --- Algorithms ---

    async def upload(self, fields: AlgorithmCreate, content: BinaryIO) -> AlgorithmRead:
        """Check a model file against its use case and store it as the next version of
        its name, then announce it to the services that follow the name's latest
        version. A file that fails a check is `InvalidInput` naming the check, and
        nothing is stored."""
        sha256, size = await asyncio.to_thread(measure, content, limit=self.max_model_bytes)
        _check_file(fields, sha256=sha256, size=size)
        use_case = await self._use_case_of(fields)
        check = await self._validate(fields, use_case, content)
        target = use_case.target.name if use_case.target is not None else None
        fields = fields.model_copy(update={"target": target})
        record, followers = await asyncio.to_thread(
            self.db.run, lambda docs: _insert_file(docs, fields, content, sha256, size, check)
        )
        for service in followers:
            event = ModelChanged(
                service=service, algorithm=record.name, version=record.version, sha256=sha256
            )
            await self.events.announce(event)
        return record

    async def _validate(
        self, fields: AlgorithmCreate, use_case: UseCase, content: BinaryIO
    ) -> ModelCheck:
        """What the file is, found in the sandbox; `InvalidInput` naming the failed check."""
        rows = await self.ml_data.read_rows(
            use_case.name, Table.training, last=validation.SAMPLE_ROWS
        )
        rows_from = "training"
        if not rows:
            rows, rows_from = validation.schema_rows(use_case), "schema"
        try:
            check = await self.sandbox.check(content, use_case, rows, rows_from=rows_from)
        except ModelFailed as exc:
            raise _refused(exc.check, exc.reason) from None
        if fields.features is not None and set(fields.features) != set(check.features):
            raise _refused(
                "features",
                f"the form lists the features {sorted(fields.features)}, but the model reads "
                f"{sorted(check.features)}",
            )
        return check

    async def _use_case_of(self, fields: AlgorithmCreate) -> UseCase:
        """The use case the upload names, from ml_data_api; `InvalidInput` when it does
        not exist or does not match the form."""
        try:
            use_case = await self.ml_data.use_case(fields.use_case)
        except errors.NotFound:
            raise _refused(
                "use case",
                f"use case {fields.use_case!r} does not exist; register it in ml_data_api "
                "first (POST /ml_data_api/use_cases)",
            ) from None
        if use_case.task is not fields.task:
            raise _refused(
                "task",
                f"the model is uploaded as {fields.task.value}, but use case "
                f"{use_case.name!r} is {use_case.task.value}",
            )
        target = use_case.target.name if use_case.target is not None else None
        if fields.target is not None and fields.target != target:
            raise _refused(
                "target", f"the form names target {fields.target!r}, the use case {target!r}"
            )
        return use_case

    def algorithms(self, *, name: str | None, use_case: str | None) -> list[AlgorithmRead]:
        """Stored versions, newest first, optionally of one name or use case."""
        names = None if name is None else [name]
        return self.db.run(
            lambda docs: _algorithm_reads(
                docs, docs.list_algorithms(names=names, use_case=use_case)
            )
        )

    def algorithm(self, name: str, version: VersionRef) -> AlgorithmRead:
        """One version (or the latest) of an algorithm, or `NotFound`."""
        return self.db.run(
            lambda docs: _algorithm_reads(docs, [_get_algorithm(docs, name, version)])[0]
        )

    def algorithm_file(
        self, name: str, version: VersionRef
    ) -> tuple[AlgorithmRead, Iterator[bytes]]:
        """One version's record and its stored bytes, a chunk at a time."""

        def read(docs: Session) -> tuple[AlgorithmRead, Iterator[bytes]]:
            algorithm = _get_algorithm(docs, name, version)
            chunks = docs.read_algorithm_file(algorithm=algorithm)
            if chunks is None:
                raise NotFound(f"the stored file of {algorithm.filename} is missing")
            return _algorithm_reads(docs, [algorithm])[0], chunks

        return self.db.run(read)

    def delete_algorithm(self, name: str, version: VersionRef) -> None:
        """Delete one version and its file, unless a service uses it (`Conflict`)."""

        def delete(docs: Session) -> None:
            docs.lock_algorithm(name=name)
            algorithm = _get_algorithm(docs, name, version)
            users = _algorithm_reads(docs, [algorithm])[0].services
            if users:
                raise Conflict(
                    f"algorithm {name!r} version {algorithm.version} is used by service(s) "
                    f"{', '.join(users)}; rebind or delete them first"
                )
            docs.delete_algorithm(algorithm=algorithm)

        self.db.run(delete)

    # --- Services ---

    async def create_service(self, body: NamedServiceCreate) -> ServiceRead:
        """Create a service, declare its queue and announce its model; `Conflict` when
        the name is taken (rebinding is `bind`)."""
        fields = ServiceCreate.model_validate(body.model_dump(exclude={"name"}))
        record, _created = await self._bind(body.name, fields, create_only=True)
        return record

    async def bind(self, name: str, body: ServiceCreate) -> tuple[ServiceRead, bool]:
        """Create or rebind a service, then declare its queue and announce its model;
        (service, created). A rebinding may not move a service to another use case
        (`Conflict`). The binding stands even when RabbitMQ is out of reach."""
        return await self._bind(name, body, create_only=False)

    async def _bind(
        self, name: str, body: ServiceCreate, *, create_only: bool
    ) -> tuple[ServiceRead, bool]:
        record, event, created = await asyncio.to_thread(
            self.db.run, lambda docs: _save_binding(docs, name, body, create_only=create_only)
        )
        announced = await self.events.bind(routing_key=record.routing_key, event=event)
        return record.model_copy(update={"announced": announced}), created

    def report_model_status(self, name: str, report: ModelStatusReport) -> ServiceRead:
        """Record a worker's word on whether the service's model version loads and
        predicts. A report on a version the service no longer uses changes nothing."""

        def record(docs: Session) -> ServiceRead:
            found = docs.find_service(name=name)
            if found is None:
                raise NotFound(f"no service named {name!r}")
            current = _service_reads(docs, [found])[0]
            if (current.algorithm_name, current.resolved_version) == (
                report.algorithm_name,
                report.version,
            ):
                status = ModelStatus(**report.model_dump(), reported_at=_now())
                docs.set_model_status(name=name, status=status.model_dump())
                current = current.model_copy(update={"model_status": status})
            return current

        return self.db.run(record)

    def services(self, name: str | None = None) -> list[ServiceRead]:
        """Every service (or the one named), with the version each resolves to now."""
        return self.db.run(lambda docs: _service_reads(docs, docs.list_services(name=name)))

    def service(self, name: str) -> ServiceRead:
        """One service, or `NotFound`."""
        found = self.services(name)
        if not found:
            raise NotFound(f"no service named {name!r}")
        return found[0]

    async def delete_service(self, name: str) -> dict[str, int]:
        """Delete a service's binding and its queue, once no message waits in it:
        `NotFound`, `Conflict` naming how many messages wait, or `Unavailable` when
        RabbitMQ cannot say. Returns what was kept ({"dead_letters": n})."""
        bound = await asyncio.to_thread(self.service, name)  # NotFound before RabbitMQ
        kept = await self.events.remove_queues(name, routing_key=bound.routing_key)
        if not await asyncio.to_thread(self.db.run, lambda docs: docs.delete_service(name=name)):
            raise NotFound(f"no service named {name!r}")
        return kept

    # --- Jobs ---

    def create_jobs(self, jobs: list[JobCreate]) -> tuple[list[JobRead], set[JobKey]]:
        """Create the jobs not stored yet and leave the others as they are; (every job in
        request order, the keys created)."""
        _check_batch(len(jobs))
        keys = [(job.service, job.message_id) for job in jobs]

        def create(docs: Session) -> tuple[list[JobRead], set[JobKey]]:
            created = docs.insert_jobs(jobs=jobs, now=_now())
            found = docs.find_jobs(keys=keys)
            return [JobRead.model_validate(found[k]) for k in keys], created

        return self.db.run(create)

    def record_jobs(self, jobs: list[JobRecord]) -> int:
        """Write jobs in their final state, created or not before; how many."""
        _check_batch(len(jobs))
        return self.db.run(lambda docs: docs.record_jobs(jobs=jobs, now=_now()))

    def update_jobs(self, updates: list[JobUpdate]) -> list[JobRead]:
        """Apply new states to jobs, all or none: an unknown job is `NotFound`."""
        _check_batch(len(updates))
        keys = [(update.service, update.message_id) for update in updates]

        def update(docs: Session) -> list[JobRead]:
            found = docs.find_jobs(keys=keys)
            missing = sorted(f"{s}/{m}" for s, m in set(keys) - found.keys())
            if missing:
                raise NotFound(f"unknown job(s), nothing was updated: {', '.join(missing[:20])}")
            changes = {k: _job_changes(u, found[k]) for k, u in zip(keys, updates, strict=True)}
            docs.update_jobs(changes=changes)
            stored = docs.find_jobs(keys=keys)
            return [JobRead.model_validate(stored[k]) for k in keys]

        return self.db.run(update)

    def update_job(self, service: str, message_id: str, change: JobChange) -> JobRead:
        """Apply a new state to one job."""
        given = change.model_dump(exclude_unset=True)  # unset fields keep their value
        return self.update_jobs([JobUpdate(service=service, message_id=message_id, **given)])[0]

    def job(self, service: str, message_id: str) -> JobRead:
        """One job, or `NotFound`."""
        key = (service, message_id)
        found = self.db.run(lambda docs: docs.find_jobs(keys=[key]))
        if key not in found:
            raise NotFound(f"no job of service {service!r} for message {message_id!r}")
        return JobRead.model_validate(found[key])

    def jobs(
        self,
        *,
        status: JobStatus | None,
        service: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[JobRead]:
        """Jobs newest first, filtered by status, service and start date."""
        found = self.db.run(
            lambda docs: docs.list_jobs(
                status=status, service=service, since=since, until=until, limit=limit
            )
        )
        return [JobRead.model_validate(job) for job in found]

    def count_jobs(self, *, service: str | None, since: datetime | None) -> JobCounts:
        """How many jobs are in each status."""
        counts = self.db.run(lambda docs: docs.count_jobs(service=service, since=since))
        return JobCounts(**counts)


def measure(content: BinaryIO, *, limit: int) -> tuple[str, int]:
    """SHA-256 and size of a file read a chunk at a time; `TooLarge` once past `limit`."""
    digest, size = hashlib.sha256(), 0
    content.seek(0)
    while chunk := content.read(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"model file is over the limit of {limit} bytes")
        digest.update(chunk)
    return digest.hexdigest(), size


def _check_file(fields: AlgorithmCreate, *, sha256: str, size: int) -> None:
    if size == 0:
        raise InvalidInput("empty file: upload the saved model")
    if fields.sha256 is not None and fields.sha256 != sha256:
        raise InvalidInput(
            f"checksum mismatch: the file's SHA-256 is {sha256}, the form said "
            f"{fields.sha256}; nothing was stored"
        )


def _refused(check: str, reason: str) -> InvalidInput:
    """The 422 of an upload that failed one of the checks."""
    return InvalidInput(
        f"model check '{check}' failed: {reason}; nothing was stored",
        errors=[{"check": check, "reason": reason}],
    )


def _insert_file(
    docs: Session,
    fields: AlgorithmCreate,
    content: BinaryIO,
    sha256: str,
    size: int,
    check: ModelCheck,
) -> tuple[AlgorithmRead, list[str]]:
    """The new version's record, and the services that follow the name's latest version."""
    algorithm = docs.insert_algorithm(
        fields=fields, content=content, sha256=sha256, size=size, check=check, now=_now()
    )
    bound = docs.list_services(algorithm_names=[fields.name])
    followers = [s.name for s in bound if s.algorithm_version is None]
    return _algorithm_reads(docs, [algorithm])[0], followers


def _now() -> datetime:
    """Now, to the millisecond MongoDB keeps, so answers match what is read back later."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _pinned(version: VersionRef) -> int | None:
    return version if isinstance(version, int) else None


def _get_algorithm(docs: Session, name: str, version: VersionRef) -> StoredAlgorithm:
    found = docs.find_algorithm(name=name, version=_pinned(version))
    if found is not None:
        return found
    if version == LATEST or docs.find_algorithm(name=name, version=None) is None:
        raise NotFound(f"no algorithm named {name!r}")
    raise NotFound(f"algorithm {name!r} has no version {version}")


def _algorithm_reads(docs: Session, algorithms: list[StoredAlgorithm]) -> list[AlgorithmRead]:
    """Records of algorithm versions, each naming the services that use it now."""
    names = {a.name for a in algorithms}
    latest = docs.latest_versions(names=names)
    users: dict[tuple[str, int], list[str]] = defaultdict(list)
    for service in docs.list_services(algorithm_names=names):
        version = service.algorithm_version or latest.get(service.algorithm_name, 0)
        users[(service.algorithm_name, version)].append(service.name)
    fields = [f for f in AlgorithmRead.model_fields if f not in ("services", "check")]
    return [
        AlgorithmRead(
            **{f: getattr(a, f) for f in fields},
            check=ModelCheck.model_validate(a.check) if a.check else None,
            services=users[(a.name, a.version)],
        )
        for a in algorithms
    ]


def _save_binding(
    docs: Session, name: str, body: ServiceCreate, *, create_only: bool
) -> tuple[ServiceRead, ModelChanged, bool]:
    docs.lock_algorithm(name=body.algorithm_name)
    algorithm = _get_algorithm(docs, body.algorithm_name, body.algorithm_version)
    if body.use_case is not None and body.use_case != algorithm.use_case:
        raise InvalidInput(
            f"service use case {body.use_case!r} differs from algorithm {algorithm.name!r}'s "
            f"use case {algorithm.use_case!r}"
        )
    existing = docs.find_service(name=name)
    if existing is not None and create_only:
        raise Conflict(
            f"service {name!r} exists; rebind it with PUT /queue_manager/services/{name}"
        )
    if existing is not None and existing.use_case != algorithm.use_case:
        raise Conflict(
            f"service {name!r} serves use case {existing.use_case!r}; algorithm "
            f"{algorithm.name!r} is for {algorithm.use_case!r}: create another service for it"
        )
    service, created = docs.save_service(
        name=name,
        routing_key=body.routing_key,
        use_case=algorithm.use_case,
        algorithm_name=algorithm.name,
        algorithm_version=_pinned(body.algorithm_version),
        updated_by=body.updated_by,
        now=_now(),
    )
    event = ModelChanged(
        service=name, algorithm=algorithm.name, version=algorithm.version, sha256=algorithm.sha256
    )
    return _service_read(service, algorithm), event, created


def _service_reads(docs: Session, services: list[StoredService]) -> list[ServiceRead]:
    """Records of services, each with the algorithm version it resolves to now."""
    versions = docs.list_algorithms(names={s.algorithm_name for s in services})
    by_version = {(a.name, a.version): a for a in versions}
    latest: dict[str, int] = {}
    for a in versions:
        latest[a.name] = max(a.version, latest.get(a.name, 0))

    def resolve(service: StoredService) -> StoredAlgorithm | None:
        version = service.algorithm_version or latest.get(service.algorithm_name, 0)
        return by_version.get((service.algorithm_name, version))

    return [_service_read(s, resolve(s)) for s in services]


def _service_read(service: StoredService, algorithm: StoredAlgorithm | None) -> ServiceRead:
    status = ModelStatus.model_validate(service.model_status) if service.model_status else None
    resolved = None if algorithm is None else (algorithm.name, algorithm.version)
    if status is not None and (status.algorithm_name, status.version) != resolved:
        status = None  # a report on another version than the one resolved now is stale
    return ServiceRead(
        name=service.name,
        routing_key=service.routing_key,
        use_case=service.use_case,
        algorithm_name=service.algorithm_name,
        algorithm_version=service.algorithm_version or LATEST,
        resolved_version=None if algorithm is None else algorithm.version,
        sha256=None if algorithm is None else algorithm.sha256,
        features=[] if algorithm is None else list(algorithm.features),
        updated_at=service.updated_at,
        updated_by=service.updated_by,
        model_status=status,
    )


def _check_batch(size: int) -> None:
    if size == 0:
        raise InvalidInput("empty batch: send at least one job")
    if size > MAX_BATCH_JOBS:
        raise TooLarge(
            f"batch of {size} jobs is over the limit of {MAX_BATCH_JOBS}; "
            "split it into smaller requests"
        )


def _job_changes(update: JobUpdate, stored: dict[str, Any]) -> dict[str, Any]:
    """The fields an update sets; a final status also sets the end date and duration."""
    changes: dict[str, Any] = {"last_status": update.last_status.value}
    for name in ("result", "message", "model_version"):
        if name in update.model_fields_set:
            changes[name] = getattr(update, name)
    end = update.end_date or (_now() if update.last_status in FINAL else None)
    if end is not None:
        elapsed = end - stored["metadata"]["start_date"]
        if elapsed.total_seconds() < 0:
            raise InvalidInput(
                f"end_date {end.isoformat()} of job {update.service}/{update.message_id} is "
                "before its start_date; nothing was updated"
            )
        changes["metadata.end_date"] = end
        changes["metadata.time_elapsed_sec"] = elapsed.total_seconds()
    return changes
