"""What queue_manager keeps, whatever keeps it: the stores' common interface.

Two stores implement it: `pg_store.PostgresStore` (the embedded default: a schema of its
own in the PostgreSQL `make run` already needs, model files content-addressed by SHA-256
in it) and `mongo_store.MongoStore` (MongoDB through mongoengine, the deployment path of
compose; mongomock in its place is a test double). The service runs each unit of work in
one call of `Store.run`, which hands it a `Session`; a session's methods take and return
plain values, the records below and job documents in MongoDB's shape (the original's
JSON: `{"message_id", "service", "payload", "last_status", "result", "message",
"model_version", "metadata": {"start_date", "end_date", "time_elapsed_sec",
"routing_key", "worker"}}`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, BinaryIO, Protocol, TypeVar

from gits_common.jobs import JobCreate, JobRecord, JobStatus
from gits_common.registry import ModelCheck
from queue_manager.schemas import AlgorithmCreate

CHUNK_BYTES = 1024 * 1024
JobKey = tuple[str, str]  # (service, message_id)
T = TypeVar("T")


class StoredAlgorithm(Protocol):
    """One stored version of a model file, as a store returns it."""

    name: str
    version: int
    use_case: str
    task: str
    features: list[str]
    target: str | None
    description: str | None
    sha256: str
    size: int
    filename: str
    uploaded_by: str
    uploaded_at: datetime
    check: dict[str, Any] | None


class StoredService(Protocol):
    """A service and the algorithm version (None: the latest) its workers use."""

    name: str
    routing_key: str
    use_case: str
    algorithm_name: str
    algorithm_version: int | None
    updated_at: datetime
    updated_by: str | None
    model_status: dict[str, Any] | None


class Session(Protocol):
    """Every query queue_manager runs, inside one unit of work."""

    def insert_algorithm(
        self,
        *,
        fields: AlgorithmCreate,
        content: BinaryIO,
        sha256: str,
        size: int,
        check: ModelCheck,
        now: datetime,
    ) -> StoredAlgorithm:
        """Store a model file as the next version of its name (the first is 1), under
        `<name>-v<version>.pkl`, with the features its check found."""
        ...

    def lock_algorithm(self, *, name: str) -> None:
        """Hold the algorithm name until the unit of work ends, so that uploading,
        binding and deleting its versions happen one after the other (a binding and a
        deletion at once could leave a service bound to a deleted version)."""
        ...

    def find_algorithm(self, *, name: str, version: int | None) -> StoredAlgorithm | None:
        """One version of an algorithm (the latest when `version` is None), or None."""
        ...

    def list_algorithms(
        self, *, names: Iterable[str] | None = None, use_case: str | None = None
    ) -> list[StoredAlgorithm]:
        """Stored versions, newest first, optionally of some names or one use case."""
        ...

    def latest_versions(self, *, names: Iterable[str]) -> dict[str, int]:
        """The highest version of each named algorithm that has one."""
        ...

    def read_algorithm_file(self, *, algorithm: StoredAlgorithm) -> Iterator[bytes] | None:
        """The stored bytes of a model file in chunks of at most CHUNK_BYTES; None when
        the file is gone."""
        ...

    def delete_algorithm(self, *, algorithm: StoredAlgorithm) -> None:
        """Delete one algorithm version (and its file, when no other version has it)."""
        ...

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
    ) -> tuple[StoredService, bool]:
        """Create or rebind a service; (service, created). A rebinding forgets the
        workers' report on the model it replaces."""
        ...

    def set_model_status(self, *, name: str, status: dict[str, Any]) -> None:
        """Keep the workers' newest report on a service's model."""
        ...

    def find_service(self, *, name: str) -> StoredService | None:
        """One service, or None."""
        ...

    def list_services(
        self, *, name: str | None = None, algorithm_names: Iterable[str] | None = None
    ) -> list[StoredService]:
        """Services by name, optionally only one name or those bound to some algorithms."""
        ...

    def delete_service(self, *, name: str) -> bool:
        """Delete a service; False when there was none."""
        ...

    def insert_jobs(self, *, jobs: Sequence[JobCreate], now: datetime) -> set[JobKey]:
        """Create the jobs whose (service, message_id) is new, in one round trip; jobs
        already stored stay as they are. Returns the keys created."""
        ...

    def record_jobs(self, *, jobs: Sequence[JobRecord], now: datetime) -> int:
        """Write jobs in their final state: a job not stored yet is created with its
        payload and start; one stored keeps its start and takes the final state, and a
        `finished` record also brings its payload (the message whose prediction is
        stored). A job already `finished` keeps its first word: its prediction is the
        one stored (rows keep their first write too), so a later copy of the message, a
        redelivery that found its row stored or one that failed (dead-lettered with its
        own reason), changes nothing. Returns how many records were taken."""
        ...

    def find_jobs(self, *, keys: Iterable[JobKey]) -> dict[JobKey, dict[str, Any]]:
        """Stored jobs by (service, message_id); keys not stored are left out."""
        ...

    def update_jobs(self, *, changes: Mapping[JobKey, dict[str, Any]]) -> None:
        """Set fields of jobs by key (`metadata.<field>` for the metadata's)."""
        ...

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
        ...

    def count_jobs(self, *, service: str | None, since: datetime | None) -> dict[str, int]:
        """Jobs per status, of one service and started since a time when given."""
        ...


class Store(Protocol):
    """A store's connection: units of work, health, and closing."""

    description: str  # what /health reports: "postgresql", "mongodb", "mongomock (test double)"

    def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` as one unit of work; the store out of reach is `Unavailable`."""
        ...

    def ping(self) -> None:
        """Raise `Unavailable` unless the store answers."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...
