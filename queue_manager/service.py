"""What queue_manager does, apart from HTTP: model files, service bindings and jobs."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from gits_common.amqp import ModelChanged
from gits_common.errors import Conflict, InvalidInput, NotFound, TooLarge
from queue_manager import store
from queue_manager.db import Database
from queue_manager.documents import Algorithm, Documents, Service
from queue_manager.events import ModelEvents
from queue_manager.schemas import (
    FINAL,
    LATEST,
    AlgorithmCreate,
    AlgorithmRead,
    JobChange,
    JobCounts,
    JobCreate,
    JobRead,
    JobStatus,
    JobUpdate,
    ServiceCreate,
    ServiceRead,
    VersionRef,
)
from queue_manager.store import JobKey

log = logging.getLogger(__name__)
MAX_BATCH_JOBS = 1000
PRUNE_EVERY = 100  # jobs created between two prunings of an in-memory store


class QueueManager:
    """Algorithms, services and jobs in MongoDB; model changes announced on RabbitMQ.
    MongoDB calls block, so the async methods run them in a worker thread."""

    def __init__(
        self, db: Database, events: ModelEvents, *, max_model_bytes: int, memory_max_jobs: int
    ) -> None:
        self.db = db
        self.events = events
        self.max_model_bytes = max_model_bytes
        self.memory_max_jobs = memory_max_jobs
        self._created_since_prune = 0

    # --- Algorithms ---

    async def upload(self, fields: AlgorithmCreate, content: BinaryIO) -> AlgorithmRead:
        """Store a model file as the next version of its name, and announce it to the
        services that follow the name's latest version."""
        sha256, size = await asyncio.to_thread(measure, content, limit=self.max_model_bytes)
        _check_file(fields, sha256=sha256, size=size)
        record, followers = await asyncio.to_thread(
            self.db.run, lambda docs: _insert_file(docs, fields, content, sha256, size)
        )
        for service in followers:
            event = ModelChanged(
                service=service, algorithm=record.name, version=record.version, sha256=sha256
            )
            await self.events.announce(event)
        return record

    def algorithms(self, *, name: str | None, use_case: str | None) -> list[AlgorithmRead]:
        """Stored versions, newest first, optionally of one name or use case."""
        names = None if name is None else [name]
        return self.db.run(
            lambda docs: _algorithm_reads(
                docs, store.list_algorithms(db=docs, names=names, use_case=use_case)
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

        def read(docs: Documents) -> tuple[AlgorithmRead, Iterator[bytes]]:
            algorithm = _get_algorithm(docs, name, version)
            chunks = store.read_algorithm_file(algorithm=algorithm)
            if chunks is None:
                raise NotFound(f"the stored file of {algorithm.filename} is missing")
            return _algorithm_reads(docs, [algorithm])[0], self.db.detach(chunks)

        return self.db.run(read)

    def delete_algorithm(self, name: str, version: VersionRef) -> None:
        """Delete one version and its file, unless a service uses it (`Conflict`)."""

        def delete(docs: Documents) -> None:
            algorithm = _get_algorithm(docs, name, version)
            users = _algorithm_reads(docs, [algorithm])[0].services
            if users:
                raise Conflict(
                    f"algorithm {name!r} version {algorithm.version} is used by service(s) "
                    f"{', '.join(users)}; rebind or delete them first"
                )
            store.delete_algorithm(algorithm=algorithm)

        self.db.run(delete)

    # --- Services ---

    async def bind(self, name: str, body: ServiceCreate) -> tuple[ServiceRead, bool]:
        """Create or rebind a service, then declare its queue and announce its model;
        (service, created). The binding stands even when RabbitMQ is out of reach."""
        record, event, created = await asyncio.to_thread(
            self.db.run, lambda docs: _save_binding(docs, name, body)
        )
        announced = await self.events.bind(routing_key=record.routing_key, event=event)
        return record.model_copy(update={"announced": announced}), created

    def services(self, name: str | None = None) -> list[ServiceRead]:
        """Every service (or the one named), with the version each resolves to now."""
        return self.db.run(
            lambda docs: _service_reads(docs, store.list_services(db=docs, name=name))
        )

    def service(self, name: str) -> ServiceRead:
        """One service, or `NotFound`."""
        found = self.services(name)
        if not found:
            raise NotFound(f"no service named {name!r}")
        return found[0]

    def delete_service(self, name: str) -> None:
        """Delete a service's binding, or `NotFound`."""
        if not self.db.run(lambda docs: store.delete_service(db=docs, name=name)):
            raise NotFound(f"no service named {name!r}")

    # --- Jobs ---

    def create_jobs(self, jobs: list[JobCreate]) -> tuple[list[JobRead], set[JobKey]]:
        """Create the jobs not stored yet and leave the others as they are; (every job in
        request order, the keys created)."""
        _check_batch(len(jobs))
        keys = [(job.service, job.message_id) for job in jobs]

        def create(docs: Documents) -> tuple[list[JobRead], set[JobKey]]:
            created = store.insert_jobs(db=docs, jobs=jobs, now=_now())
            found = store.find_jobs(db=docs, keys=keys)
            return [JobRead.model_validate(found[k]) for k in keys], created

        reads, created = self.db.run(create)
        self._bound_memory(len(created))
        return reads, created

    def _bound_memory(self, created: int) -> None:
        """In memory, keep only the newest jobs: mongomock scans every document on every
        write, so an unbounded store would slow each message down without end."""
        self._created_since_prune += created
        if not self.db.in_memory or self._created_since_prune < PRUNE_EVERY:
            return
        self._created_since_prune = 0
        removed = self.db.run(lambda docs: store.prune_jobs(db=docs, keep=self.memory_max_jobs))
        if removed:
            log.info(
                "in-memory store: dropped the %d oldest jobs (keeping %d)",
                removed,
                self.memory_max_jobs,
            )

    def update_jobs(self, updates: list[JobUpdate]) -> list[JobRead]:
        """Apply new states to jobs, all or none: an unknown job is `NotFound`."""
        _check_batch(len(updates))
        keys = [(update.service, update.message_id) for update in updates]

        def update(docs: Documents) -> list[JobRead]:
            found = store.find_jobs(db=docs, keys=keys)
            missing = sorted(f"{s}/{m}" for s, m in set(keys) - found.keys())
            if missing:
                raise NotFound(f"unknown job(s), nothing was updated: {', '.join(missing[:20])}")
            changes = {k: _job_changes(u, found[k]) for k, u in zip(keys, updates, strict=True)}
            store.update_jobs(db=docs, changes=changes)
            stored = store.find_jobs(db=docs, keys=keys)
            return [JobRead.model_validate(stored[k]) for k in keys]

        return self.db.run(update)

    def update_job(self, service: str, message_id: str, change: JobChange) -> JobRead:
        """Apply a new state to one job."""
        given = change.model_dump(exclude_unset=True)  # unset fields keep their value
        return self.update_jobs([JobUpdate(service=service, message_id=message_id, **given)])[0]

    def job(self, service: str, message_id: str) -> JobRead:
        """One job, or `NotFound`."""
        key = (service, message_id)
        found = self.db.run(lambda docs: store.find_jobs(db=docs, keys=[key]))
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
            lambda docs: store.list_jobs(
                db=docs, status=status, service=service, since=since, until=until, limit=limit
            )
        )
        return [JobRead.model_validate(job) for job in found]

    def count_jobs(self, *, service: str | None, since: datetime | None) -> JobCounts:
        """How many jobs are in each status."""
        counts = self.db.run(lambda docs: store.count_jobs(db=docs, service=service, since=since))
        return JobCounts(**counts)


def measure(content: BinaryIO, *, limit: int) -> tuple[str, int]:
    """SHA-256 and size of a file read a chunk at a time; `TooLarge` once past `limit`."""
    digest, size = hashlib.sha256(), 0
    content.seek(0)
    while chunk := content.read(store.CHUNK_BYTES):
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


def _insert_file(
    docs: Documents, fields: AlgorithmCreate, content: BinaryIO, sha256: str, size: int
) -> tuple[AlgorithmRead, list[str]]:
    """The new version's record, and the services that follow the name's latest version."""
    algorithm = store.insert_algorithm(
        db=docs, fields=fields, content=content, sha256=sha256, size=size, now=_now()
    )
    bound = store.list_services(db=docs, algorithm_names=[fields.name])
    followers = [s.name for s in bound if s.algorithm_version is None]
    return _algorithm_reads(docs, [algorithm])[0], followers


def _now() -> datetime:
    """Now, to the millisecond MongoDB keeps, so answers match what is read back later."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _pinned(version: VersionRef) -> int | None:
    return version if isinstance(version, int) else None


def _get_algorithm(docs: Documents, name: str, version: VersionRef) -> Algorithm:
    found = store.find_algorithm(db=docs, name=name, version=_pinned(version))
    if found is not None:
        return found
    if version == LATEST or store.find_algorithm(db=docs, name=name, version=None) is None:
        raise NotFound(f"no algorithm named {name!r}")
    raise NotFound(f"algorithm {name!r} has no version {version}")


def _algorithm_reads(docs: Documents, algorithms: list[Algorithm]) -> list[AlgorithmRead]:
    """Records of algorithm versions, each naming the services that use it now."""
    names = {a.name for a in algorithms}
    latest = store.latest_versions(db=docs, names=names)
    users: dict[tuple[str, int], list[str]] = defaultdict(list)
    for service in store.list_services(db=docs, algorithm_names=names):
        version = service.algorithm_version or latest.get(service.algorithm_name, 0)
        users[(service.algorithm_name, version)].append(service.name)
    fields = [f for f in AlgorithmRead.model_fields if f != "services"]
    return [
        AlgorithmRead(**{f: getattr(a, f) for f in fields}, services=users[(a.name, a.version)])
        for a in algorithms
    ]


def _save_binding(
    docs: Documents, name: str, body: ServiceCreate
) -> tuple[ServiceRead, ModelChanged, bool]:
    algorithm = _get_algorithm(docs, body.algorithm_name, body.algorithm_version)
    if body.use_case is not None and body.use_case != algorithm.use_case:
        raise InvalidInput(
            f"service use case {body.use_case!r} differs from algorithm {algorithm.name!r}'s "
            f"use case {algorithm.use_case!r}"
        )
    service, created = store.save_service(
        db=docs,
        name=name,
        routing_key=body.routing_key,
        use_case=body.use_case or algorithm.use_case,
        algorithm_name=algorithm.name,
        algorithm_version=_pinned(body.algorithm_version),
        updated_by=body.updated_by,
        now=_now(),
    )
    event = ModelChanged(
        service=name, algorithm=algorithm.name, version=algorithm.version, sha256=algorithm.sha256
    )
    return _service_read(service, algorithm), event, created


def _service_reads(docs: Documents, services: list[Service]) -> list[ServiceRead]:
    """Records of services, each with the algorithm version it resolves to now."""
    versions = store.list_algorithms(db=docs, names={s.algorithm_name for s in services})
    by_version = {(a.name, a.version): a for a in versions}
    latest: dict[str, int] = {}
    for a in versions:
        latest[a.name] = max(a.version, latest.get(a.name, 0))

    def resolve(service: Service) -> Algorithm | None:
        version = service.algorithm_version or latest.get(service.algorithm_name)
        return by_version.get((service.algorithm_name, version))

    return [_service_read(s, resolve(s)) for s in services]


def _service_read(service: Service, algorithm: Algorithm | None) -> ServiceRead:
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
        changes["metadata.end_date"] = end
        elapsed = end - stored["metadata"]["start_date"]
        changes["metadata.time_elapsed_sec"] = elapsed.total_seconds()
    return changes
