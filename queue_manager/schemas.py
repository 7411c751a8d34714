"""Request and response bodies of queue_manager."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, Json, StringConstraints

from gits_common.schemas import Task
from gits_common.values import as_utc

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# Algorithm and service names become file names and RabbitMQ queue names.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{64}$", to_lower=True)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LATEST: Final = "latest"


def _version(value: Any) -> Any:
    """Versions arrive as numbers or, in paths and forms, as text."""
    if value == LATEST:
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"a version is a positive integer or {LATEST!r}, not {value!r}")


# A version number, or "latest": whichever version of the name is newest at the time.
VersionRef = Annotated[int | Literal["latest"], BeforeValidator(_version)]


Timestamp = Annotated[datetime, AfterValidator(as_utc)]


class AlgorithmCreate(BaseModel):
    """The form fields sent with a model file."""

    name: Name
    use_case: Text
    task: Task
    features: Json[Annotated[list[Text], Field(min_length=1)]] = Field(
        description='JSON array of the feature names, e.g. ["temp_A", "humidity"]'
    )
    target: Text | None = None
    description: str | None = None
    uploaded_by: Text = "api"
    sha256: Sha256 | None = Field(
        default=None, description="When given, the upload is refused unless the file matches"
    )


class AlgorithmRead(BaseModel):
    """One stored version of a model file."""

    name: str
    version: int
    use_case: str
    task: Task
    features: list[str]
    target: str | None
    description: str | None
    sha256: str
    size: int
    filename: str
    uploaded_by: str
    uploaded_at: Timestamp
    services: list[str] = Field(description="Services whose workers use this version now")


class ServiceCreate(BaseModel):
    """The body of PUT /services/{name}: creates the service or rebinds it."""

    routing_key: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    use_case: Text | None = Field(
        default=None, description="Defaults to the algorithm's; must match it when given"
    )
    algorithm_name: Name
    algorithm_version: VersionRef = LATEST
    updated_by: Text | None = None


class ServiceRead(BaseModel):
    """A service, the algorithm version it is bound to, and what that resolves to now."""

    name: str
    routing_key: str
    use_case: str
    algorithm_name: str
    algorithm_version: int | Literal["latest"]
    resolved_version: int | None = Field(description="None only if the version is gone")
    sha256: str | None
    features: list[str]
    updated_at: Timestamp
    updated_by: str | None
    announced: bool = Field(
        default=False,
        description="On PUT: whether RabbitMQ took the queue and the model-change event",
    )


class JobStatus(StrEnum):
    """Where a job is in its life."""

    queued = "queued"
    processing = "processing"
    finished = "finished"
    failed = "failed"


FINAL = frozenset({JobStatus.finished, JobStatus.failed})


class JobCreate(BaseModel):
    """A job for a sensor message; creating it again changes nothing."""

    message_id: Text
    service: Text
    payload: dict[str, Any]
    routing_key: Annotated[str, StringConstraints(max_length=255)]
    worker: Text
    start_date: Timestamp | None = Field(default=None, description="Defaults to now")
    last_status: JobStatus = JobStatus.processing


class JobChange(BaseModel):
    """A job's new state; fields left out keep their value."""

    last_status: JobStatus
    result: Any = None
    message: str | None = None
    model_version: str | None = None
    end_date: Timestamp | None = Field(
        default=None, description="Defaults to now when the status is finished or failed"
    )


class JobUpdate(JobChange):
    """A job's new state, for the batch update; a job is known by service and message."""

    service: Text
    message_id: Text


class JobMetadata(BaseModel):
    """When and where a job ran."""

    start_date: Timestamp
    end_date: Timestamp | None = None
    time_elapsed_sec: float | None = None
    routing_key: str | None = None
    worker: str | None = None


class JobRead(BaseModel):
    """A job as stored."""

    message_id: str
    service: str
    payload: dict[str, Any]
    last_status: JobStatus
    result: Any = None
    message: str | None = None
    model_version: str | None = None
    metadata: JobMetadata


class JobsCreate(BaseModel):
    """Jobs to create; those already there stay as they are."""

    jobs: list[JobCreate]


class JobsUpdate(BaseModel):
    """Jobs to update, all or none."""

    jobs: list[JobUpdate]


class JobsRead(BaseModel):
    """Jobs in the order they were asked for."""

    jobs: list[JobRead]


class JobCounts(BaseModel):
    """How many jobs are in each status."""

    queued: int = 0
    processing: int = 0
    finished: int = 0
    failed: int = 0


class Health(BaseModel):
    """Service and store state."""

    status: str
    mongodb: str
