"""queue_manager's store in MongoDB through mongoengine: the deployment path (compose),
at MONGODB_URL. A `mongomock://` URL puts an in-memory mongomock store in its place: a
test double, lost at exit, never a user's store."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

import mongoengine
import mongomock
import mongomock.gridfs
from mongoengine import NotUniqueError
from pymongo import UpdateMany
from pymongo.errors import BulkWriteError, ConnectionFailure, DocumentTooLarge

from gits_common.errors import TooLarge, Unavailable
from gits_common.jobs import JobCreate, JobRecord, JobStatus
from gits_common.registry import ModelCheck
from queue_manager.documents import Documents, Service, bind
from queue_manager.schemas import AlgorithmCreate
from queue_manager.store import CHUNK_BYTES, JobKey, Session

T = TypeVar("T")
MONGOMOCK = "mongomock://"
# Two uploads of one name may race for the same version number; the unique index lets
# one of them win and the other takes the next number.
VERSION_ATTEMPTS = 5
DUPLICATE_KEY = 11000


class MongoStore:
    """One app's MongoDB connection (or mongomock's, for a `mongomock://` URL)."""

    def __init__(self, *, url: str, name: str, connect_timeout: float) -> None:
        self.in_memory = url.startswith(MONGOMOCK)
        self.description = "mongomock (test double)" if self.in_memory else "mongodb"
        alias = f"queue-manager-{uuid.uuid4().hex}"
        self.documents = bind(alias)
        # mongomock is not built for threads: it checks a unique index and then writes,
        # so two upserts of one message_id at once fail with a duplicate key. Requests
        # run in a thread pool, so the in-memory store takes one unit of work at a time.
        self._serial: AbstractContextManager[Any] = contextlib.nullcontext()
        if self.in_memory:
            self._serial = threading.RLock()
            mongomock.gridfs.enable_gridfs_integration()
            # mongoengine shares one client between aliases with equal settings; a host of
            # its own gives each app a private, empty store.
            mongoengine.connect(
                db=name,
                alias=alias,
                host=f"mongodb://{alias}",
                mongo_client_class=mongomock.MongoClient,
                tz_aware=True,
            )
        else:
            timeout_ms = int(connect_timeout * 1000)
            mongoengine.connect(
                db=name,
                alias=alias,
                host=url,
                tz_aware=True,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
            )

    def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)`, with MongoDB out of reach reported as `Unavailable`."""
        try:
            with self._serial:
                return work(MongoSession(self.documents, in_memory=self.in_memory))
        except ConnectionFailure as exc:
            raise Unavailable(f"MongoDB unavailable: {exc}") from exc
        except DocumentTooLarge as exc:
            raise TooLarge(f"a document is over MongoDB's size limit: {exc}") from exc

    def ping(self) -> None:
        """Raise `Unavailable` unless MongoDB answers a ping."""
        self.run(lambda _: mongoengine.get_db(self.documents.alias).command("ping"))

    def close(self) -> None:
        """Close the connection (an in-memory store is gone with it)."""
        mongoengine.disconnect(self.documents.alias)


class MongoSession:
    """The store's queries on one app's documents (MongoDB has no transaction here: each
    method is one round trip, or a few)."""

    def __init__(self, documents: Documents, *, in_memory: bool) -> None:
        self.db = documents
        self.in_memory = in_memory

    # --- Algorithms ---

    def insert_algorithm(
        self,
        *,
        fields: AlgorithmCreate,
        content: BinaryIO,
        sha256: str,
        size: int,
        check: ModelCheck,
        now: datetime,
    ) -> Any:
        """Store a model file as the next version of its name, under `<name>-v<version>.pkl`,
        with the features its check found (the model's own, in its order)."""
        for _ in range(VERSION_ATTEMPTS):
            version = max(self.latest_versions(names=[fields.name]).values(), default=0) + 1
            algorithm = self.db.algorithms(
                **fields.model_dump(exclude={"sha256", "features"}),
                features=check.features,
                check=check.model_dump(mode="json"),
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

    def lock_algorithm(self, *, name: str) -> None:
        """Nothing: MongoDB has no transactions here. The unique index keeps versions
        unique; a binding racing a deletion of its version is not prevented."""

    def find_algorithm(self, *, name: str, version: int | None) -> Any:
        """One version of an algorithm (the latest when `version` is None), or None."""
        found = self.db.algorithms.objects(name=name)
        if version is not None:
            return found.filter(version=version).first()
        return found.order_by("-version").first()

    def list_algorithms(
        self, *, names: Iterable[str] | None = None, use_case: str | None = None
    ) -> list[Any]:
        """Stored algorithm versions, newest first, optionally of some names or a use case."""
        found = self.db.algorithms.objects
        if names is not None:
            found = found.filter(name__in=list(names))
        if use_case is not None:
            found = found.filter(use_case=use_case)
        return list(found.order_by("-uploaded_at", "-version"))

    def latest_versions(self, *, names: Iterable[str]) -> dict[str, int]:
        """The highest version of each named algorithm that has one."""
        pipeline = [
            {"$match": {"name": {"$in": list(names)}}},
            {"$group": {"_id": "$name", "version": {"$max": "$version"}}},
        ]
        return {
            row["_id"]: row["version"] for row in self.db.algorithms.objects.aggregate(pipeline)
        }

    def read_algorithm_file(self, *, algorithm: Any) -> Iterator[bytes] | None:
        """The stored bytes of a model file, read a chunk at a time as the iterator is
        consumed (all at once from mongomock: a half-read mongomock cursor would block
        every writer until it ends); None when the file is gone."""
        stored = algorithm.file.get()
        if stored is None:
            return None
        chunks = iter(lambda: stored.read(CHUNK_BYTES), b"")
        return iter(list(chunks)) if self.in_memory else chunks

    def delete_algorithm(self, *, algorithm: Any) -> None:
        """Delete one algorithm version and its file."""
        algorithm.file.delete()
        algorithm.delete()

    # --- Services ---

    def save_service(
        self,
        *,
        name: str,
        routing_key: str,
        use_case: str,
        algorithm_name: str,
        algorithm_version: int | None,
        updated_by: str | None,
        now: datetime,
    ) -> tuple[Any, bool]:
        """Create or rebind a service; (service, created). A rebinding forgets the workers'
        report on the model it replaces."""
        created = self.db.services.objects(name=name).count() == 0
        service = self.db.services(
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

    def set_model_status(self, *, name: str, status: dict[str, Any]) -> None:
        """Keep the workers' newest report on a service's model."""
        self.db.services.objects(name=name).update_one(set__model_status=status)

    def find_service(self, *, name: str) -> Any:
        """One service, or None."""
        found: Service | None = self.db.services.objects(name=name).first()
        return found

    def list_services(
        self, *, name: str | None = None, algorithm_names: Iterable[str] | None = None
    ) -> list[Any]:
        """Services by name, optionally only one name or those bound to some algorithms."""
        found = self.db.services.objects
        if name is not None:
            found = found.filter(name=name)
        if algorithm_names is not None:
            found = found.filter(algorithm_name__in=list(algorithm_names))
        return list(found.order_by("name"))

    def delete_service(self, *, name: str) -> bool:
        """Delete a service; False when there was none."""
        return bool(self.db.services.objects(name=name).delete())

    # --- Jobs ---

    def insert_jobs(self, *, jobs: Sequence[JobCreate], now: datetime) -> set[JobKey]:
        """Create the jobs whose (service, message_id) is new, in one round trip; jobs
        already stored (a redelivered message) stay as they are. Returns the keys created."""
        # UpdateMany on a unique key acts as UpdateOne; mongomock 4.3 cannot take pymongo
        # 4.20's UpdateOne inside bulk_write.
        writes = [
            UpdateMany(
                self._key_filter((j.service, j.message_id)),
                {"$setOnInsert": self._new_job(j, now)},
                upsert=True,
            )
            for j in jobs
        ]
        collection = self.db.jobs._get_collection()
        try:
            result = collection.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            # Another request created some of these jobs at the same moment: they exist,
            # which is all that was asked.
            if any(e["code"] != DUPLICATE_KEY for e in exc.details["writeErrors"]):
                raise
            ids = [u["_id"] for u in exc.details["upserted"]]
        else:
            ids = list(result.upserted_ids.values())
        # The created jobs' keys, read back by _id (mongomock numbers upserts otherwise
        # than MongoDB does, so their positions in the batch are not relied on).
        created = collection.find({"_id": {"$in": ids}}, {"service": 1, "message_id": 1})
        return {(job["service"], job["message_id"]) for job in created}

    def record_jobs(self, *, jobs: Sequence[JobRecord], now: datetime) -> int:
        """Write jobs in their final state in two round trips a batch (a find of the stored
        starts on the unique key's index, then one unordered bulk write): a job not stored
        yet is created with its payload and start; one stored (a redelivered message)
        keeps those and takes the final state, its duration counted from its stored
        start. Returns how many jobs were written."""
        stored = self.find_jobs(keys=[(job.service, job.message_id) for job in jobs])
        writes = []
        for job in jobs:
            known = stored.get((job.service, job.message_id))
            if known and known["last_status"] == JobStatus.finished.value:
                continue  # a finished job keeps its first word (Session.record_jobs)
            start = job.start_date or now
            end = job.end_date or now
            # A job written before keeps its start, and its duration counts from there.
            began = known["metadata"]["start_date"] if known else start
            finished = job.last_status is JobStatus.finished
            on_insert = {
                "metadata.start_date": start,
                "metadata.routing_key": job.routing_key,
                "metadata.worker": job.worker,
                # a finished record brings the payload of the message it predicted
                **({} if finished else {"payload": job.payload}),
            }
            final = {
                "last_status": job.last_status.value,
                "result": job.result,
                "message": job.message,
                "model_version": job.model_version,
                "metadata.end_date": end,
                "metadata.time_elapsed_sec": max((end - began).total_seconds(), 0.0),
                **({"payload": job.payload} if finished else {}),
            }
            key = self._key_filter((job.service, job.message_id))
            writes.append(UpdateMany(key, {"$setOnInsert": on_insert, "$set": final}, upsert=True))
        if writes:
            self.db.jobs._get_collection().bulk_write(writes, ordered=False)
        return len({(job.service, job.message_id) for job in jobs})

    def _new_job(self, job: JobCreate, now: datetime) -> dict[str, Any]:
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

    def find_jobs(self, *, keys: Iterable[JobKey]) -> dict[JobKey, dict[str, Any]]:
        """Stored jobs by (service, message_id); keys not stored are left out."""
        by_service: dict[str, set[str]] = defaultdict(set)
        for service, message_id in keys:
            by_service[service].add(message_id)
        found: dict[JobKey, dict[str, Any]] = {}
        for service, ids in by_service.items():  # a batch is nearly always one service
            jobs = self.db.jobs.objects(service=service, message_id__in=list(ids)).exclude("id")
            found.update({(service, job["message_id"]): job for job in jobs.as_pymongo()})
        return found

    def update_jobs(self, *, changes: Mapping[JobKey, dict[str, Any]]) -> None:
        """Set fields (dotted paths allowed) of jobs by key, in one round trip."""
        writes = [
            UpdateMany(self._key_filter(key), {"$set": fields}) for key, fields in changes.items()
        ]
        if writes:
            self.db.jobs._get_collection().bulk_write(writes, ordered=False)

    def list_jobs(
        self,
        *,
        status: JobStatus | None,
        service: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Jobs newest first by start date: `since` inclusive, `until` exclusive."""
        query = self._job_filter(status=status, service=service, since=since, until=until)
        found = (
            self.db.jobs.objects(__raw__=query)
            .exclude("id")
            .order_by("-metadata.start_date", "-service", "-message_id")
        )
        return list(found.limit(limit).as_pymongo())

    def count_jobs(self, *, service: str | None, since: datetime | None) -> dict[str, int]:
        """Jobs per status, of one service and started since a time when given."""
        pipeline = [
            {"$match": self._job_filter(status=None, service=service, since=since, until=None)},
            {"$group": {"_id": "$last_status", "count": {"$sum": 1}}},
        ]
        return {row["_id"]: row["count"] for row in self.db.jobs.objects.aggregate(pipeline)}

    def _key_filter(self, key: JobKey) -> dict[str, str]:
        return {"service": key[0], "message_id": key[1]}

    def _job_filter(
        self,
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
