"""HTTP routes of queue_manager: parse, delegate to the service, answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Path, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from gits_common import errors
from gits_common.http import NamePath, error_responses, role
from gits_common.jobs import (
    JobChange,
    JobCounts,
    JobCreate,
    JobRead,
    JobsCreate,
    JobsRead,
    JobsRecord,
    JobsRecorded,
    JobStatus,
    JobsUpdate,
)
from gits_common.registry import (
    AlgorithmRead,
    ModelStatusReport,
    Name,
    NamedServiceCreate,
    ServiceCreate,
    ServiceRead,
    VersionRef,
)
from gits_common.rules import MessageId, RowTime, StorableText
from gits_common.schemas import UseCaseName
from gits_common.settings import Role
from queue_manager.schemas import AlgorithmCreate
from queue_manager.service import QueueManager

router = APIRouter(prefix="/queue_manager")

MAX_LIST_JOBS = 10_000

MessageIdPath = Annotated[MessageId, Path()]
VersionPath = Annotated[VersionRef, Path(description="a version number or 'latest'")]

_JOB = {
    "message_id": "pq-0001",
    "service": "product_quality",
    "payload": {"timestamp": "2025-03-01T00:00:00+00:00", "T_data_1_1": 242.0},
    "routing_key": "gits_product_quality_A",
    "worker": "worker-1",
}
SERVICE_EXAMPLES = {
    "latest": {
        "summary": "Follow the latest version",
        "value": {
            "routing_key": "gits_product_quality_A",
            "algorithm_name": "product_quality",
            "algorithm_version": "latest",
        },
    }
}
JOBS_EXAMPLES = {"one": {"summary": "A received message", "value": {"jobs": [_JOB]}}}
UPDATES_EXAMPLES = {
    "finished": {
        "summary": "A prediction made",
        "value": {
            "jobs": [
                {
                    "service": "service_product_quality_A",
                    "message_id": "pq-0001",
                    "last_status": "finished",
                    "result": {"prediction": 358.1},
                    "model_version": "product_quality:1",
                }
            ]
        },
    }
}


def manager(request: Request) -> QueueManager:
    """The app's QueueManager service."""
    queue_manager: QueueManager = request.app.state.queue_manager
    return queue_manager


# --- Algorithms ---


@router.post(
    "/algorithms",
    response_model=AlgorithmRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses({errors.DependencyFailed: "ml_data_api answered unexpectedly"}),
    openapi_extra=role(Role.admin),
)
async def upload_algorithm(
    fields: Annotated[AlgorithmCreate, Form()],
    file: Annotated[UploadFile, File(description="The model saved with PyCaret's save_model")],
    request: Request,
) -> AlgorithmRead:
    """Check a model file and store it as the next version of its name (the first is 1),
    then announce it to the services bound to the name's latest version.

    The check runs in a sandbox process with a time and memory limit: the file loads,
    names the features it reads (all of the use case's), the use case exists and has the
    upload's task, and the model predicts a few rows of the use case's training table
    (or rows made from its schema) with the output its task promises. A failed check is
    422 naming it, and nothing is stored."""
    return await manager(request).upload(fields, file.file)


@router.get("/algorithms", response_model=list[AlgorithmRead], openapi_extra=role(Role.read))
def list_algorithms(
    request: Request, name: Name | None = None, use_case: UseCaseName | None = None
) -> list[AlgorithmRead]:
    """Stored algorithm versions, newest first; `name` and `use_case` filter them (each by
    its rule: a filter no name could match is a 422 naming it)."""
    return manager(request).algorithms(name=name, use_case=use_case)


@router.get(
    "/algorithms/{name}/versions/{version}",
    response_model=AlgorithmRead,
    openapi_extra=role(Role.read),
)
def read_algorithm(name: NamePath, version: VersionPath, request: Request) -> AlgorithmRead:
    """One version of an algorithm, or its latest."""
    return manager(request).algorithm(name, version)


@router.get(
    "/algorithms/{name}/versions/{version}/file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    openapi_extra=role(Role.runtime),
)
def download_algorithm(name: NamePath, version: VersionPath, request: Request) -> Response:
    """The model file's bytes, with their SHA-256 in `X-Checksum-SHA256`."""
    record, chunks = manager(request).algorithm_file(name, version)
    headers = {
        "X-Checksum-SHA256": record.sha256,
        "Content-Disposition": f"attachment; filename={record.filename}",
        "Content-Length": str(record.size),
    }
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


@router.delete(
    "/algorithms/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses({errors.Conflict: "A service uses the version"}),
    openapi_extra=role(Role.admin),
)
def delete_algorithm(name: NamePath, version: VersionPath, request: Request) -> None:
    """Delete one version and its file; refused (409) while a service uses it."""
    manager(request).delete_algorithm(name, version)


# --- Services ---


@router.post(
    "/services",
    response_model=ServiceRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        {
            errors.NotFound: "No algorithm version of that name and version",
            errors.Conflict: "A service of that name exists",
        }
    ),
    openapi_extra=role(Role.admin),
)
async def create_service(body: NamedServiceCreate, request: Request) -> ServiceRead:
    """Create a service bound to an algorithm version (or its latest), declare its queue
    and announce its model; 409 when a service of that name exists (rebind it with PUT)."""
    return await manager(request).create_service(body)


@router.put(
    "/services/{name}",
    response_model=ServiceRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {"model": ServiceRead, "description": "Rebound"},
        **error_responses(
            {
                errors.NotFound: "No algorithm version of that name and version",
                errors.Conflict: "The service serves another use case than the algorithm",
            }
        ),
    },
    openapi_extra=role(Role.admin),
)
async def bind_service(
    name: NamePath,
    body: Annotated[ServiceCreate, Body(openapi_examples=SERVICE_EXAMPLES)],
    request: Request,
    response: Response,
) -> ServiceRead:
    """Create a service (201) or rebind it (200) to an algorithm version or its latest,
    declare its queue on RabbitMQ and announce its model to its workers. A rebinding to
    an algorithm of another use case is refused (409). When RabbitMQ is out of reach the
    binding is still saved and `announced` is false."""
    record, created = await manager(request).bind(name, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return record


@router.put(
    "/services/{name}/model_status", response_model=ServiceRead, openapi_extra=role(Role.runtime)
)
def report_model_status(name: NamePath, report: ModelStatusReport, request: Request) -> ServiceRead:
    """A worker's word on the service's model version: whether it loads and predicts,
    and why not. Shown on the service until it is rebound; a report on a version the
    service no longer resolves to changes nothing."""
    return manager(request).report_model_status(name, report)


@router.get("/services", response_model=list[ServiceRead], openapi_extra=role(Role.read))
def list_services(request: Request) -> list[ServiceRead]:
    """Every service and the algorithm version it resolves to now."""
    return manager(request).services()


@router.get("/services/{name}", response_model=ServiceRead, openapi_extra=role(Role.read))
def read_service(name: NamePath, request: Request) -> ServiceRead:
    """One service."""
    return manager(request).service(name)


@router.delete(
    "/services/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses({errors.Conflict: "Messages wait in the service's queue"}),
    openapi_extra=role(Role.admin),
)
async def delete_service(name: NamePath, request: Request, response: Response) -> None:
    """Delete a service's binding and its queue; refused (409, with the count) while
    messages wait in the queue, 503 while RabbitMQ cannot say. Its dead-letter queue is
    deleted too when empty, else kept (their count in `X-Dead-Letters-Kept`)."""
    kept = await manager(request).delete_service(name)
    if kept.get("dead_letters"):
        response.headers["X-Dead-Letters-Kept"] = str(kept["dead_letters"])


# --- Jobs ---


@router.post(
    "/jobs",
    response_model=JobRead,
    status_code=status.HTTP_201_CREATED,
    responses={status.HTTP_200_OK: {"model": JobRead, "description": "Stored before, unchanged"}},
    openapi_extra=role(Role.runtime),
)
def create_job(job: JobCreate, request: Request, response: Response) -> JobRead:
    """Create a job (201); one already stored is answered as it is (200)."""
    jobs, created = manager(request).create_jobs([job])
    if not created:
        response.status_code = status.HTTP_200_OK
    return jobs[0]


@router.post("/jobs/batch", response_model=JobsRead, openapi_extra=role(Role.runtime))
def create_jobs(
    body: Annotated[JobsCreate, Body(openapi_examples=JOBS_EXAMPLES)], request: Request
) -> JobsRead:
    """Create up to 1000 jobs; those already stored stay as they are, so a redelivered
    message never resets a finished job. Answers every job in request order."""
    jobs, _created = manager(request).create_jobs(body.jobs)
    return JobsRead(jobs=jobs)


@router.put("/jobs/batch", response_model=JobsRecorded, openapi_extra=role(Role.runtime))
def record_jobs(body: JobsRecord, request: Request) -> JobsRecorded:
    """Write up to 1000 jobs in their final state (finished or failed) in one request,
    whether or not they were created before: a worker's one write a batch."""
    return JobsRecorded(recorded=manager(request).record_jobs(body.jobs))


@router.patch(
    "/jobs/batch",
    response_model=JobsRead,
    responses=error_responses({errors.NotFound: "A job of the batch is unknown"}),
    openapi_extra=role(Role.runtime),
)
def update_jobs(
    body: Annotated[JobsUpdate, Body(openapi_examples=UPDATES_EXAMPLES)], request: Request
) -> JobsRead:
    """Update up to 1000 jobs, all or none; finished or failed ones get their end date
    and time elapsed."""
    return JobsRead(jobs=manager(request).update_jobs(body.jobs))


@router.get("/jobs", response_model=list[JobRead], openapi_extra=role(Role.read))
def list_jobs(
    request: Request,
    status: JobStatus | None = None,
    service: StorableText | None = None,
    since: Annotated[RowTime | None, Query(description="start date, inclusive")] = None,
    until: Annotated[RowTime | None, Query(description="start date, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_JOBS)] = 100,
) -> list[JobRead]:
    """Jobs, newest start date first."""
    return manager(request).jobs(
        status=status, service=service, since=since, until=until, limit=limit
    )


@router.get("/jobs/counts", response_model=JobCounts, openapi_extra=role(Role.read))
def count_jobs(
    request: Request,
    service: StorableText | None = None,
    since: Annotated[RowTime | None, Query(description="start date, inclusive")] = None,
) -> JobCounts:
    """How many jobs are queued, processing, finished and failed."""
    return manager(request).count_jobs(service=service, since=since)


@router.get("/jobs/{service}/{message_id}", response_model=JobRead, openapi_extra=role(Role.read))
def read_job(service: NamePath, message_id: MessageIdPath, request: Request) -> JobRead:
    """One service's job for one message."""
    return manager(request).job(service, message_id)


@router.patch(
    "/jobs/{service}/{message_id}", response_model=JobRead, openapi_extra=role(Role.runtime)
)
def update_job(
    service: NamePath, message_id: MessageIdPath, change: JobChange, request: Request
) -> JobRead:
    """Update one job."""
    return manager(request).update_job(service, message_id, change)


# --- The original GITS routes ---


@router.get("/get_services", response_model=list[ServiceRead], openapi_extra=role(Role.read))
def get_services(request: Request, service_name: StorableText | None = None) -> list[ServiceRead]:
    """The original's service list, filtered by `service_name` when given."""
    return manager(request).services(service_name)


@router.get("/get_algorithms", response_model=list[AlgorithmRead], openapi_extra=role(Role.read))
def get_algorithms(request: Request) -> list[AlgorithmRead]:
    """The original's algorithm list."""
    return manager(request).algorithms(name=None, use_case=None)
