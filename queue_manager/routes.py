"""HTTP routes of queue_manager: parse, delegate to the service, answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Path, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from queue_manager.schemas import (
    NAME_PATTERN,
    AlgorithmCreate,
    AlgorithmRead,
    JobChange,
    JobCounts,
    JobCreate,
    JobRead,
    JobsCreate,
    JobsRead,
    JobStatus,
    JobsUpdate,
    ServiceCreate,
    ServiceRead,
    Timestamp,
    VersionRef,
)
from queue_manager.service import QueueManager

router = APIRouter(prefix="/queue_manager")

MAX_LIST_JOBS = 10_000

NamePath = Annotated[str, Path(pattern=NAME_PATTERN)]
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


@router.post("/algorithms", response_model=AlgorithmRead, status_code=status.HTTP_201_CREATED)
async def upload_algorithm(
    fields: Annotated[AlgorithmCreate, Form()],
    file: Annotated[UploadFile, File(description="The saved model (any bytes)")],
    request: Request,
) -> AlgorithmRead:
    """Store a model file as the next version of its name (the first is 1) and announce it
    to the services bound to the name's latest version."""
    return await manager(request).upload(fields, file.file)


@router.get("/algorithms", response_model=list[AlgorithmRead])
def list_algorithms(
    request: Request, name: str | None = None, use_case: str | None = None
) -> list[AlgorithmRead]:
    """Stored algorithm versions, newest first."""
    return manager(request).algorithms(name=name, use_case=use_case)


@router.get("/algorithms/{name}/versions/{version}", response_model=AlgorithmRead)
def read_algorithm(name: NamePath, version: VersionPath, request: Request) -> AlgorithmRead:
    """One version of an algorithm, or its latest."""
    return manager(request).algorithm(name, version)


@router.get(
    "/algorithms/{name}/versions/{version}/file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
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


@router.delete("/algorithms/{name}/versions/{version}", status_code=status.HTTP_204_NO_CONTENT)
def delete_algorithm(name: NamePath, version: VersionPath, request: Request) -> None:
    """Delete one version and its file; refused (409) while a service uses it."""
    manager(request).delete_algorithm(name, version)


# --- Services ---


@router.put("/services/{name}", response_model=ServiceRead, status_code=status.HTTP_201_CREATED)
async def bind_service(
    name: NamePath,
    body: Annotated[ServiceCreate, Body(openapi_examples=SERVICE_EXAMPLES)],
    request: Request,
    response: Response,
) -> ServiceRead:
    """Create a service (201) or rebind it (200) to an algorithm version or its latest,
    declare its queue on RabbitMQ and announce its model to its workers. When RabbitMQ
    is out of reach the binding is still saved and `announced` is false."""
    record, created = await manager(request).bind(name, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return record


@router.get("/services", response_model=list[ServiceRead])
def list_services(request: Request) -> list[ServiceRead]:
    """Every service and the algorithm version it resolves to now."""
    return manager(request).services()


@router.get("/services/{name}", response_model=ServiceRead)
def read_service(name: NamePath, request: Request) -> ServiceRead:
    """One service."""
    return manager(request).service(name)


@router.delete("/services/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_service(name: NamePath, request: Request) -> None:
    """Delete a service's binding (its RabbitMQ queue stays, with any waiting messages)."""
    manager(request).delete_service(name)


# --- Jobs ---


@router.post("/jobs", response_model=JobRead, status_code=status.HTTP_201_CREATED)
def create_job(job: JobCreate, request: Request, response: Response) -> JobRead:
    """Create a job (201); one already stored is answered as it is (200)."""
    jobs, created = manager(request).create_jobs([job])
    if not created:
        response.status_code = status.HTTP_200_OK
    return jobs[0]


@router.post("/jobs/batch", response_model=JobsRead)
def create_jobs(
    body: Annotated[JobsCreate, Body(openapi_examples=JOBS_EXAMPLES)], request: Request
) -> JobsRead:
    """Create up to 1000 jobs; those already stored stay as they are, so a redelivered
    message never resets a finished job. Answers every job in request order."""
    jobs, _created = manager(request).create_jobs(body.jobs)
    return JobsRead(jobs=jobs)


@router.patch("/jobs/batch", response_model=JobsRead)
def update_jobs(
    body: Annotated[JobsUpdate, Body(openapi_examples=UPDATES_EXAMPLES)], request: Request
) -> JobsRead:
    """Update up to 1000 jobs, all or none; finished or failed ones get their end date
    and time elapsed."""
    return JobsRead(jobs=manager(request).update_jobs(body.jobs))


@router.get("/jobs", response_model=list[JobRead])
def list_jobs(
    request: Request,
    status: JobStatus | None = None,
    service: str | None = None,
    since: Annotated[Timestamp | None, Query(description="start date, inclusive")] = None,
    until: Annotated[Timestamp | None, Query(description="start date, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_JOBS)] = 100,
) -> list[JobRead]:
    """Jobs, newest start date first."""
    return manager(request).jobs(
        status=status, service=service, since=since, until=until, limit=limit
    )


@router.get("/jobs/counts", response_model=JobCounts)
def count_jobs(
    request: Request,
    service: str | None = None,
    since: Annotated[Timestamp | None, Query(description="start date, inclusive")] = None,
) -> JobCounts:
    """How many jobs are queued, processing, finished and failed."""
    return manager(request).count_jobs(service=service, since=since)


@router.get("/jobs/{service}/{message_id}", response_model=JobRead)
def read_job(service: str, message_id: str, request: Request) -> JobRead:
    """One service's job for one message."""
    return manager(request).job(service, message_id)


@router.patch("/jobs/{service}/{message_id}", response_model=JobRead)
def update_job(service: str, message_id: str, change: JobChange, request: Request) -> JobRead:
    """Update one job."""
    return manager(request).update_job(service, message_id, change)


# --- The original GITS routes ---


@router.get("/get_services", response_model=list[ServiceRead])
def get_services(request: Request, service_name: str | None = None) -> list[ServiceRead]:
    """The original's service list, filtered by `service_name` when given."""
    return manager(request).services(service_name)


@router.get("/get_algorithms", response_model=list[AlgorithmRead])
def get_algorithms(request: Request) -> list[AlgorithmRead]:
    """The original's algorithm list."""
    return manager(request).algorithms(name=None, use_case=None)
