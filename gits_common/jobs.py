"""Wire shapes of jobs, as in the original GITS: what became of one sensor message in
one service. queue_manager stores them, workers write them, the admin reads them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, model_validator

from gits_common.registry import Text
from gits_common.rules import Float, MessageId, StorableText, UtcTime
from gits_common.values import JsonValue, json_document_validator

# Jobs one batch request may create or update.
MAX_BATCH_JOBS = 1000
# What a job keeps of its message: workers send the message when it is under 16 KiB and
# its start otherwise; queue_manager refuses more than this.
PAYLOAD_MAX_BYTES = 64 * 1024
JobPayload = Annotated[dict[str, Any], json_document_validator(PAYLOAD_MAX_BYTES)]


class JobStatus(StrEnum):
    """Where a job is in its life."""

    queued = "queued"
    processing = "processing"
    finished = "finished"
    failed = "failed"


FINAL = frozenset({JobStatus.finished, JobStatus.failed})


class JobCreate(BaseModel):
    """A job for a sensor message; creating it again changes nothing."""

    message_id: MessageId
    service: Text
    payload: JobPayload
    routing_key: Annotated[StorableText, Field(max_length=255)] = ""
    worker: Text
    start_date: UtcTime | None = Field(default=None, description="Defaults to now")
    last_status: JobStatus = JobStatus.processing


class JobChange(BaseModel):
    """A job's new state; fields left out keep their value."""

    last_status: JobStatus
    result: JsonValue = None
    message: Annotated[StorableText, Field(max_length=10_000)] | None = None
    model_version: Annotated[StorableText, Field(max_length=300)] | None = None
    end_date: UtcTime | None = Field(
        default=None, description="Defaults to now when the status is finished or failed"
    )


class JobUpdate(JobChange):
    """A job's new state, for the batch update; a job is known by service and message."""

    service: Text
    message_id: MessageId


class JobMetadata(BaseModel):
    """When and where a job ran."""

    start_date: UtcTime
    end_date: UtcTime | None = None
    time_elapsed_sec: Float | None = None
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


class JobRecord(JobCreate):
    """A job in its final state, recorded in one write whether or not it existed: what a
    worker sends once a message is stored or dead-lettered."""

    last_status: JobStatus = Field(description="finished or failed")
    result: JsonValue = None
    message: Annotated[StorableText, Field(max_length=10_000)] | None = None
    model_version: Annotated[StorableText, Field(max_length=300)] | None = None
    end_date: UtcTime | None = Field(default=None, description="Defaults to now")

    @model_validator(mode="after")
    def _final(self) -> Self:
        if self.last_status not in FINAL:
            raise ValueError("a recorded job is finished or failed")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class JobsRecord(BaseModel):
    """Jobs in their final state."""

    jobs: list[JobRecord]


class JobsRecorded(BaseModel):
    """How many jobs a record request wrote."""

    recorded: int


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
