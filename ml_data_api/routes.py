"""HTTP routes of ml_data_api: parse, delegate to the service, answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import JSONResponse

from gits_common import errors
from gits_common.http import UseCaseNamePath, error_responses, role
from gits_common.rules import RowTime
from gits_common.schemas import Table, UseCase
from gits_common.settings import Role
from gits_ml.demo import PRODUCT_QUALITY, example_row
from ml_data_api.schemas import (
    DeleteResult,
    InsertResult,
    LabelResult,
    LabelsCreate,
    LegacyInsert,
    RowsCreate,
    RowsRead,
    UseCaseDeleted,
    UseCaseRead,
)
from ml_data_api.service import MlData
from ml_data_api.store import RowQuery

router = APIRouter(prefix="/ml_data_api")

MAX_READ_ROWS = 100_000

_ROW = example_row()
USE_CASE_EXAMPLES = {
    "demo": {"summary": "The demo", "value": PRODUCT_QUALITY.model_dump(mode="json")}
}
ROWS_EXAMPLES = {
    "training": {"summary": "A labelled row", "value": {"rows": [{**_ROW, "quality": 362.4}]}},
    "production": {
        "summary": "A prediction",
        "value": {"rows": [{**_ROW, "prediction": 358.1, "model_version": "demo:1"}]},
    },
}
LABELS_EXAMPLES = {
    "one": {
        "summary": "A measured quality",
        "value": {"labels": [{"message_id": "example-0001", "value": 362.4}]},
    },
}
LEGACY_EXAMPLES = {
    "original": {
        "summary": "As the original workers sent it",
        "value": {"table_name": "production", "data": {**_ROW, "prediction": 358.1}},
    }
}


def service(request: Request) -> MlData:
    """The app's MlData service."""
    ml_data: MlData = request.app.state.ml_data
    return ml_data


@router.post(
    "/use_cases",
    response_model=UseCaseRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {"model": UseCaseRead, "description": "Registered before, the same"},
        **error_responses({errors.Conflict: "Registered before with another definition"}),
    },
    openapi_extra=role(Role.admin),
)
def register_use_case(
    use_case: Annotated[UseCase, Body(openapi_examples=USE_CASE_EXAMPLES)],
    request: Request,
    response: Response,
) -> UseCaseRead:
    """Register a use case and create its training, testing and production tables.
    The same definition again answers 200; a different one under the same name 409."""
    record, created = service(request).register(use_case)
    if not created:
        response.status_code = status.HTTP_200_OK
    return record


@router.get("/use_cases", response_model=list[UseCaseRead], openapi_extra=role(Role.read))
def list_use_cases(request: Request) -> list[UseCaseRead]:
    """Every registered use case."""
    return service(request).use_cases()


@router.get("/use_cases/{name}", response_model=UseCaseRead, openapi_extra=role(Role.read))
def read_use_case(name: UseCaseNamePath, request: Request) -> UseCaseRead:
    """One use case's definition and tables."""
    return service(request).get(name)


@router.delete(
    "/use_cases/{name}",
    response_model=UseCaseDeleted,
    responses=error_responses(
        {
            errors.NotFound: "No use case of that name",
            errors.Conflict: "A service uses it (named), or something else depends on its tables",
            errors.Unavailable: "queue_manager (or the database) cannot be reached: nothing "
            "was deleted",
        }
    ),
    openapi_extra=role(Role.admin),
)
async def delete_use_case(name: UseCaseNamePath, request: Request) -> UseCaseDeleted:
    """Delete a use case: its registry entry and its training, testing and production
    tables with all their rows. Refused (409, naming them) while a service in
    queue_manager uses it, and (503) when queue_manager cannot say. The name can then
    be registered again, with any definition."""
    return await service(request).delete_use_case(name)


@router.get("/use_cases/{name}/counts", openapi_extra=role(Role.read))
def count_rows(name: UseCaseNamePath, request: Request) -> dict[str, int]:
    """Rows in each of the use case's tables."""
    return service(request).counts(name)


@router.post(
    "/use_cases/{name}/{table}/rows",
    response_model=InsertResult,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=role(Role.runtime),
)
def insert_rows(
    name: UseCaseNamePath,
    table: Table,
    body: Annotated[RowsCreate, Body(openapi_examples=ROWS_EXAMPLES)],
    request: Request,
) -> InsertResult:
    """Insert one or many rows, all or nothing. Rows whose message_id is already stored
    are skipped, so a repeated insert is a no-op."""
    return service(request).insert(name, table, body.rows)


@router.get(
    "/use_cases/{name}/{table}/rows", response_model=RowsRead, openapi_extra=role(Role.read)
)
def read_rows(
    name: UseCaseNamePath,
    table: Table,
    request: Request,
    last: Annotated[int | None, Query(ge=1, le=MAX_READ_ROWS, description="newest N rows")] = None,
    start: Annotated[RowTime | None, Query(description="inclusive")] = None,
    end: Annotated[RowTime | None, Query(description="exclusive")] = None,
    labelled: Annotated[
        bool | None, Query(description="only rows whose target is (true) or is not (false) set")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_READ_ROWS)] = 10_000,
) -> JSONResponse:
    """Rows in ascending time order: the newest `last`, or those in [start, end), at most
    `limit`. Without parameters, the newest 100."""
    if last is None and start is None and end is None:
        last = 100
    query = RowQuery(start=start, end=end, last=last, labelled=labelled, limit=limit)
    rows = service(request).read(name, table, query)
    # Built directly: validating 100k rows through the response model costs seconds.
    body = {"use_case": name, "table": table.value, "count": len(rows), "rows": rows}
    return JSONResponse(body)


@router.post(
    "/use_cases/{name}/labels", response_model=LabelResult, openapi_extra=role(Role.runtime)
)
def attach_labels(
    name: UseCaseNamePath,
    body: Annotated[LabelsCreate, Body(openapi_examples=LABELS_EXAMPLES)],
    request: Request,
) -> LabelResult:
    """Attach true labels to production rows by message id (the ground truth arriving),
    and add the labelled rows to the training table. Labelling again changes nothing."""
    return service(request).label(name, body.labels)


@router.delete(
    "/use_cases/{name}/{table}/rows", response_model=DeleteResult, openapi_extra=role(Role.admin)
)
def delete_rows(
    name: UseCaseNamePath,
    table: Table,
    request: Request,
    start: Annotated[RowTime, Query(description="inclusive")],
    end: Annotated[RowTime, Query(description="exclusive")],
) -> DeleteResult:
    """Delete the rows whose time is in [start, end)."""
    return DeleteResult(deleted=service(request).delete(name, table, start=start, end=end))


@router.post(
    "/insert_data/",
    response_model=InsertResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses({errors.NotFound: "No use case of that name"}),
    openapi_extra=role(Role.runtime),
)
def insert_data(
    body: Annotated[LegacyInsert, Body(openapi_examples=LEGACY_EXAMPLES)], request: Request
) -> InsertResult:
    """The original GITS insert: `{"table_name": ..., "data": row or rows}`; column names
    match ignoring case. Kept for the original's users; new code uses the rows route."""
    ml_data = service(request)
    name = body.use_case or request.app.state.settings.default_use_case
    rows = body.data if isinstance(body.data, list) else [body.data]
    return ml_data.insert(name, body.table_name, ml_data.rename_legacy(name, rows))
