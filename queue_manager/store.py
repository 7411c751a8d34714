"""Every MongoDB query queue_manager runs. Functions take the app's documents and
keyword arguments; none knows about HTTP."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, BinaryIO

from mongoengine import NotUniqueError
from pymongo import UpdateMany
from pymongo.errors import BulkWriteError

from queue_manager.documents import Algorithm, Documents, Service
from queue_manager.schemas import AlgorithmCreate, JobCreate, JobStatus

CHUNK_BYTES = 1024 * 1024
# Two uploads of one name may race for the same version number; the unique index lets
# one of them win and the other takes the next number.
VERSION_ATTEMPTS = 5
DUPLICATE_KEY = 11000
JobKey = tuple[str, str]  # (service, message_id)


# --- Algorithms ---


def insert_algorithm(
    *,
    db: Documents,
    fields: AlgorithmCreate,
    content: BinaryIO,
    sha256: str,
    size: int,
    now: datetime,
) -> Algorithm:
    """Store a model file as the next version of its name, under `<name>-v<version>.pkl`."""
    for _ in range(VERSION_ATTEMPTS):
        version = max(latest_versions(db=db, names=[fields.name]).values(), default=0) + 1
        algorithm = db.algorithms(
            **fields.model_dump(exclude={"sha256"}),
            version=version,
            sha256=sha256,
            size=size,
            filename=f"{fields.name}-v{version}.pkl",
            uploaded_at=now,
        )
        content.seek(0)
        algorithm.file.put(
            content, filename=algorithm.filename, content_type="application/octet-stream"
        )
        try:
            algorithm.save()
        except NotUniqueError:
            algorithm.file.delete()
            continue
        return algorithm
    raise RuntimeError(f"no free version number for {fields.name!r} after {VERSION_ATTEMPTS}")


def find_algorithm(*, db: Documents, name: str, version: int | None) -> Algorithm | None:
    """One version of an algorithm (the latest when `version` is None), or None."""
    found = db.algorithms.objects(name=name)
    if version is not None:
        return found.filter(version=version).first()
    return found.order_by("-version").first()


def list_algorithms(
    *, db: Documents, names: Iterable[str] | None = None, use_case: str | None = None
) -> list[Algorithm]:
    """Stored algorithm versions, newest first, optionally of some names or a use case."""
    found = db.algorithms.objects
    if names is not None:
        found = found.filter(name__in=list(names))
    if use_case is not None:
        found = found.filter(use_case=use_case)
    return list(found.order_by("-uploaded_at", "-version"))


def latest_versions(*, db: Documents, names: Iterable[str]) -> dict[str, int]:
    """The highest version of each named algorithm that has one."""
    pipeline = [
        {"$match": {"name": {"$in": list(names)}}},
        {"$group": {"_id": "$name", "version": {"$max": "$version"}}},
    ]
    return {row["_id"]: row["version"] for row in db.algorithms.objects.aggregate(pipeline)}


def read_algorithm_file(*, algorithm: Algorithm) -> Iterator[bytes] | None:
    """The stored bytes of a model file, opened now and read a chunk at a time as the
    iterator is consumed; None when the file is gone."""
    stored = algorithm.file.get()
    if stored is None:
        return None
    return iter(lambda: stored.read(CHUNK_BYTES), b"")


def delete_algorithm(*, algorithm: Algorithm) -> None:
    """Delete one algorithm version and its file."""
    algorithm.file.delete()
    algorithm.delete()


# --- Services ---


def save_service(
    *,
    db: Documents,
    name: str,
    routing_key: str,
    use_case: str,
    algorithm_name: str,
    algorithm_version: int | None,
    updated_by: str | None,
    now: datetime,
) -> tuple[Service, bool]:
    """Create or rebind a service; (service, created)."""
    created = db.services.objects(name=name).count() == 0
    service = db.services(
        name=name,
        routing_key=routing_key,
        use_case=use_case,
        algorithm_name=algorithm_name,
        algorithm_version=algorithm_version,
        updated_by=updated_by,
        updated_at=now,
    )
    service.save()
    return service, created


def find_service(*, db: Documents, name: str) -> Service | None:
    """One service, or None."""
    found: Service | None = db.services.objects(name=name).first()
    return found


def list_services(
    *, db: Documents, name: str | None = None, algorithm_names: Iterable[str] | None = None
) -> list[Service]:
    """Services by name, optionally only one name or those bound to some algorithms."""
    found = db.services.objects
    if name is not None:
        found = found.filter(name=name)
    if algorithm_names is not None:
        found = found.filter(algorithm_name__in=list(algorithm_names))
    return list(found.order_by("name"))


def delete_service(*, db: Documents, name: str) -> bool:
    """Delete a service; False when there was none."""
    return bool(db.services.objects(name=name).delete())


# --- Jobs ---


def insert_jobs(*, db: Documents, jobs: Sequence[JobCreate], now: datetime) -> set[JobKey]:
    """Create the jobs whose (service, message_id) is new, in one round trip; jobs
    already stored (a redelivered message) stay as they are. Returns the keys created."""
    # UpdateMany on a unique key acts as UpdateOne; mongomock 4.3 cannot take pymongo
    # 4.20's UpdateOne inside bulk_write.
    writes = [
        UpdateMany(
            _key_filter((j.service, j.message_id)), {"$setOnInsert": _new_job(j, now)}, upsert=True
        )
        for j in jobs
    ]
    try:
        result = db.jobs._get_collection().bulk_write(writes, ordered=False)
    except BulkWriteError as exc:
        # Another request created some of these jobs at the same moment: they exist,
        # which is all that was asked.
        if any(e["code"] != DUPLICATE_KEY for e in exc.details["writeErrors"]):
            raise
        created = [u["index"] for u in exc.details["upserted"]]
    else:
        created = list(result.upserted_ids)
    return {(jobs[index].service, jobs[index].message_id) for index in created}


def _new_job(job: JobCreate, now: datetime) -> dict[str, Any]:
    return {
        "message_id": job.message_id,
        "service": job.service,
        "payload": job.payload,
        "last_status": job.last_status.value,
        "result": None,
        "message": None,
        "model_version": None,
        "metadata": {
            "start_date": job.start_date or now,
            "end_date": None,
            "time_elapsed_sec": None,
            "routing_key": job.routing_key,
            "worker": job.worker,
        },
    }


def find_jobs(*, db: Documents, keys: Iterable[JobKey]) -> dict[JobKey, dict[str, Any]]:
    """Stored jobs by (service, message_id); keys not stored are left out."""
    by_service: dict[str, set[str]] = defaultdict(set)
    for service, message_id in keys:
        by_service[service].add(message_id)
    found: dict[JobKey, dict[str, Any]] = {}
    for service, ids in by_service.items():  # a batch is nearly always one service
        jobs = db.jobs.objects(service=service, message_id__in=list(ids)).exclude("id")
        found.update({(service, job["message_id"]): job for job in jobs.as_pymongo()})
    return found


def update_jobs(*, db: Documents, changes: Mapping[JobKey, dict[str, Any]]) -> None:
    """Set fields (dotted paths allowed) of jobs by key, in one round trip."""
    writes = [UpdateMany(_key_filter(key), {"$set": fields}) for key, fields in changes.items()]
    if writes:
        db.jobs._get_collection().bulk_write(writes, ordered=False)


def prune_jobs(*, db: Documents, keep: int) -> int:
    """Delete the oldest jobs (by start date) beyond the newest `keep`; how many went."""
    excess = db.jobs.objects.count() - keep
    if excess <= 0:
        return 0
    oldest = db.jobs.objects.order_by("metadata.start_date").limit(excess).scalar("id")
    return int(db.jobs.objects(id__in=list(oldest)).delete())


def list_jobs(
    *,
    db: Documents,
    status: JobStatus | None,
    service: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Jobs newest first by start date: `since` inclusive, `until` exclusive."""
    query = _job_filter(status=status, service=service, since=since, until=until)
    found = db.jobs.objects(__raw__=query).exclude("id").order_by("-metadata.start_date")
    return list(found.limit(limit).as_pymongo())


def count_jobs(*, db: Documents, service: str | None, since: datetime | None) -> dict[str, int]:
    """Jobs per status, of one service and started since a time when given."""
    pipeline = [
        {"$match": _job_filter(status=None, service=service, since=since, until=None)},
        {"$group": {"_id": "$last_status", "count": {"$sum": 1}}},
    ]
    return {row["_id"]: row["count"] for row in db.jobs.objects.aggregate(pipeline)}


def _key_filter(key: JobKey) -> dict[str, str]:
    return {"service": key[0], "message_id": key[1]}


def _job_filter(
    *,
    status: JobStatus | None,
    service: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if status is not None:
        query["last_status"] = status.value
    if service is not None:
        query["service"] = service
    window = {op: t for op, t in (("$gte", since), ("$lt", until)) if t is not None}
    if window:
        query["metadata.start_date"] = window
    return query
