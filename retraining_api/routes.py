"""HTTP routes of retraining_api: parse, delegate to the service, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse

from gits_common import errors
from gits_common.http import error_responses, role
from gits_common.registry import AlgorithmRead
from gits_common.schemas import Table, UseCaseName
from gits_common.settings import Role
from retraining_api.schemas import (
    MAX_JOB_ID,
    Actor,
    ExplainerCreate,
    JobKind,
    JobRead,
    JobStatus,
    Name,
    PromotionRead,
    RegistrationCreate,
    RetrainingCreate,
)
from retraining_api.service import RetrainingService

router = APIRouter(prefix="/retraining_api")

# Every parameter that names something is checked by that thing's rule here, so a bad
# value answers 422 naming the parameter before it reaches a query or another service.
Limit = Annotated[int, Query(ge=1, le=1000)]
JobIdPath = Annotated[int, Path(ge=1, le=MAX_JOB_ID)]
ServicePath = Annotated[Name, Path(description="A service's name in queue_manager")]
UseCaseFilter = Annotated[UseCaseName | None, Query(description="Only this use case's")]
ServiceFilter = Annotated[Name | None, Query(alias="service", description="Only this service's")]
RETRAINING_EXAMPLES = {
    "demo": {
        "summary": "Retrain the demo use case, compare six models, promote a clear winner",
        "value": {
            "use_case": "product_quality",
            "metric": "MAE",
            "time_budget_seconds": 120,
            "auto_promote": True,
            "requested_by": "postman",
        },
    }
}
EXPLAINER_EXAMPLES = {
    "version": {
        "summary": "The demo model's latest version on production rows",
        "value": {
            "model_name": "product_quality_baseline",
            "model_version": "latest",
            "data": "production",
        },
    }
}
ACTOR_EXAMPLES = {"someone": {"summary": "Who asks", "value": {"requested_by": "postman"}}}
REGISTRATION_EXAMPLES = {
    "default name": {"summary": "As the service's algorithm", "value": {"requested_by": "postman"}},
    "named": {
        "summary": "As a version of a named algorithm",
        "value": {"requested_by": "postman", "algorithm_name": "diabetes"},
    },
}
HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "The dashboard page"}
}
# What the APIs retraining_api asks may answer that it passes on.
DEPENDENCIES: dict[type[errors.GitsError], str] = {
    errors.DependencyFailed: "ml_data_api or queue_manager answered unexpectedly"
}


def service(request: Request) -> RetrainingService:
    """The app's RetrainingService."""
    retraining: RetrainingService = request.app.state.retraining
    return retraining


# --- Retraining jobs ---


@router.post(
    "/jobs",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        {errors.NotFound: "No use case, or no service, of that name", **DEPENDENCIES}
    ),
    openapi_extra=role(Role.admin),
)
async def start_retraining(
    body: Annotated[RetrainingCreate, Body(openapi_examples=RETRAINING_EXAMPLES)],
    request: Request,
) -> JobRead:
    """Queue a retraining job (answers at once): train a challenger on the training table,
    score it and the service's champion on the same held-out rows (the testing table and
    the newest labelled production rows, kept out of training). Data on which the result
    would mean nothing (a single class, too few rows of a class to cross-validate, a
    single class held out) is 422 with the class counts and what is needed."""
    return await service(request).start_retraining(body)


@router.get("/jobs", response_model=list[JobRead], openapi_extra=role(Role.read))
async def list_retraining_jobs(
    request: Request,
    use_case: UseCaseFilter = None,
    service_name: ServiceFilter = None,
    limit: Limit = 50,
) -> list[JobRead]:
    """Retraining jobs, newest first."""
    return await service(request).jobs(
        JobKind.retraining, use_case=use_case, service=service_name, limit=limit
    )


@router.get("/jobs/{job_id}", response_model=JobRead, openapi_extra=role(Role.read))
async def read_retraining_job(job_id: JobIdPath, request: Request) -> JobRead:
    """One retraining job: status, stage and percent, result or error."""
    return await service(request).job(JobKind.retraining, job_id)


@router.post(
    "/jobs/{job_id}/promote",
    response_model=PromotionRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        {
            errors.Conflict: "The job has no challenger to promote, or it was promoted",
            **DEPENDENCIES,
        }
    ),
    openapi_extra=role(Role.admin),
)
async def promote(
    job_id: JobIdPath,
    request: Request,
    actor: Annotated[Actor, Body(openapi_examples=ACTOR_EXAMPLES)],
) -> PromotionRead:
    """Register the job's challenger as the next version of the service's algorithm in
    queue_manager and bind the service to it; workers swap models without a restart."""
    return await service(request).promote(job_id, actor.requested_by)


@router.post(
    "/jobs/{job_id}/register",
    response_model=AlgorithmRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        {
            errors.Conflict: "The job has no challenger, or it was registered or promoted",
            **DEPENDENCIES,
        }
    ),
    openapi_extra=role(Role.admin),
)
async def register(
    job_id: JobIdPath,
    request: Request,
    body: Annotated[RegistrationCreate, Body(openapi_examples=REGISTRATION_EXAMPLES)],
) -> AlgorithmRead:
    """Register the job's challenger in queue_manager as the next version of an algorithm,
    binding no service (`gits train` without a service to promote to); bind it with
    queue_manager's `PUT /services/{name}`."""
    return await service(request).register(job_id, body.requested_by, body.algorithm_name)


# --- Services and promotion history ---


@router.post(
    "/services/{name}/rollback",
    response_model=PromotionRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        {errors.Conflict: "No promotion put the service's version there", **DEPENDENCIES}
    ),
    openapi_extra=role(Role.admin),
)
async def rollback(
    name: ServicePath,
    request: Request,
    actor: Annotated[Actor, Body(openapi_examples=ACTOR_EXAMPLES)],
) -> PromotionRead:
    """Bind the service back to the version its newest promotion replaced (409 when no
    promotion put its current version there)."""
    return await service(request).rollback(name, actor.requested_by)


@router.get("/promotions", response_model=list[PromotionRead], openapi_extra=role(Role.read))
async def list_promotions(
    request: Request,
    service_name: ServiceFilter = None,
    use_case: UseCaseFilter = None,
) -> list[PromotionRead]:
    """Every promotion and rollback (who, when, metrics), newest first."""
    return await service(request).promotions(service=service_name, use_case=use_case)


# --- Explainer dashboards ---


@router.post(
    "/explainers",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        status.HTTP_200_OK: {"model": JobRead, "description": "Asked before: the same job"},
        **error_responses(
            {
                errors.NotFound: "No model version, or no retraining job, of that name",
                errors.Conflict: "The retraining job has not finished",
                **DEPENDENCIES,
            }
        ),
    },
    openapi_extra=role(Role.admin),
)
async def start_explainer(
    body: Annotated[ExplainerCreate, Body(openapi_examples=EXPLAINER_EXAMPLES)],
    request: Request,
    response: Response,
) -> JobRead:
    """Queue an explainer dashboard for a model version (or a retraining job's
    challenger) on a table's rows; the same model on the same rows answers the existing
    job (200) instead of building it again."""
    job, cached = await service(request).start_explainer(body)
    if cached:
        response.status_code = status.HTTP_200_OK
    return job


@router.get("/explainers", response_model=list[JobRead], openapi_extra=role(Role.read))
async def list_explainers(
    request: Request, use_case: UseCaseFilter = None, limit: Limit = 50
) -> list[JobRead]:
    """Explainer jobs, newest first."""
    return await service(request).jobs(
        JobKind.explainer, use_case=use_case, service=None, limit=limit
    )


@router.get("/explainers/{job_id}", response_model=JobRead, openapi_extra=role(Role.read))
async def read_explainer(job_id: JobIdPath, request: Request) -> JobRead:
    """One explainer job."""
    return await service(request).job(JobKind.explainer, job_id)


@router.get(
    "/explainers/{job_id}/html",
    response_class=FileResponse,
    responses={**HTML, **error_responses({errors.Conflict: "The page is being built"})},
    openapi_extra=role(Role.read),
)
async def explainer_html(job_id: JobIdPath, request: Request) -> FileResponse:
    """The finished dashboard as a static HTML page (409 while it is being built)."""
    return FileResponse(await service(request).explainer_page(job_id), media_type="text/html")


@router.get(
    "/get_explainer_dashboard",
    response_class=FileResponse,
    responses={
        **HTML,
        status.HTTP_202_ACCEPTED: {"model": JobRead, "description": "The page is being built"},
        **error_responses({errors.NotFound: "No model of that name", **DEPENDENCIES}),
    },
    openapi_extra=role(Role.read),
)
async def get_explainer_dashboard(
    request: Request,
    model_name: Annotated[Name, Query(description="The algorithm's name in queue_manager")],
    config_name: Annotated[
        UseCaseName | None, Query(description="The use case; must be the model's when given")
    ] = None,
    evaluate_on: Table = Table.production,
) -> Response:
    """The original's URL: the dashboard page of the model's latest version when it is
    built, else the job building it (202), started if need be."""
    job, _ = await service(request).start_explainer(
        ExplainerCreate(model_name=model_name, data=evaluate_on), use_case_name=config_name
    )
    if job.status is JobStatus.finished:
        return FileResponse(await service(request).explainer_page(job.id), media_type="text/html")
    return JSONResponse(job.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
