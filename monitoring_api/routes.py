"""HTTP routes of monitoring_api: parse, delegate to the services, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from gits_common.http import UseCaseNamePath, role
from gits_common.monitoring import (
    AlertRead,
    HistoryRead,
    PointRead,
    Reference,
    ReportFormat,
    ReportKind,
    Thresholds,
    ThresholdsUpdate,
)
from gits_common.rules import UtcTime
from gits_common.settings import Role
from monitoring_api.service import ReportRequest, ReportService
from monitoring_api.sources import WindowQuery
from monitoring_api.watch import Watch

router = APIRouter(prefix="/monitoring_api")

MAX_WINDOW_ROWS = 100_000
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {}, "text/html": {}},
        "description": "The report; header X-Cache says whether it came from the cache",
    }
}


def reports(request: Request) -> ReportService:
    """The app's report service."""
    service: ReportService = request.app.state.reports
    return service


def watch(request: Request) -> Watch:
    """The app's metric history, thresholds and alerts."""
    service: Watch = request.app.state.watch
    return service


@router.get(
    "/use_cases/{name}/reports/{kind}", responses=REPORT_RESPONSES, openapi_extra=role(Role.read)
)
async def report(
    name: UseCaseNamePath,
    kind: ReportKind,
    request: Request,
    reference: Reference = Reference.training,
    last: Annotated[
        int | None,
        Query(ge=1, le=MAX_WINDOW_ROWS, description="the newest N production rows (default 1000)"),
    ] = None,
    start: Annotated[UtcTime | None, Query(description="window start, inclusive")] = None,
    end: Annotated[UtcTime | None, Query(description="window end, exclusive")] = None,
    format_: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
) -> Response:
    """Compare a window of production rows with the training or testing table: data
    quality, data drift, target drift, prediction drift or model performance, as a JSON
    summary (with Evidently's snapshot) or Evidently's self-contained HTML page."""
    asked = ReportRequest(kind, reference, WindowQuery(last=last, start=start, end=end), format_)
    rendered, hit = await reports(request).report(name, asked)
    headers = {"X-Cache": "hit" if hit else "miss"}
    return Response(rendered.body, media_type=rendered.media_type, headers=headers)


@router.post(
    "/use_cases/{name}/history/run", response_model=PointRead, openapi_extra=role(Role.admin)
)
async def run_history_point(name: UseCaseNamePath, request: Request) -> PointRead:
    """Compute one history point now: drift of the newest production rows against the
    training table and realised performance, stored and checked against the thresholds."""
    return await watch(request).run_point(name)


@router.get("/use_cases/{name}/history", response_model=HistoryRead, openapi_extra=role(Role.read))
async def read_history(
    name: UseCaseNamePath,
    request: Request,
    start: Annotated[UtcTime | None, Query(description="inclusive")] = None,
    end: Annotated[UtcTime | None, Query(description="exclusive")] = None,
    metric: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z][a-z0-9_]{0,63}$",
            description="drift_share, drift_score, drift_p_value, mae, rmse, r2, accuracy, f1...",
        ),
    ] = None,
) -> HistoryRead:
    """The stored metric history of a use case, oldest first; when no value matches,
    `reason` says why: the newest point is outside the range, or the rows are too few
    (production rows in the window against MONITORING_MIN_WINDOW_ROWS, and training rows
    older than the window against the same), or no point was taken yet and when the next
    is due."""
    return await watch(request).history(name, start=start, end=end, metric=metric)


@router.get(
    "/use_cases/{name}/thresholds", response_model=Thresholds, openapi_extra=role(Role.read)
)
async def read_thresholds(name: UseCaseNamePath, request: Request) -> Thresholds:
    """When the use case's history points raise alerts (the defaults until set)."""
    return await watch(request).thresholds(name)


@router.put(
    "/use_cases/{name}/thresholds", response_model=Thresholds, openapi_extra=role(Role.admin)
)
async def set_thresholds(
    name: UseCaseNamePath, change: ThresholdsUpdate, request: Request
) -> Thresholds:
    """Change the thresholds given and keep the others: a field left out keeps its value
    (the MONITORING_DEFAULT_* default until set), null turns its check off (webhook_url:
    no webhook). To go back to a default, send its value. Answers every threshold."""
    return await watch(request).set_thresholds(name, change)


@router.get(
    "/use_cases/{name}/alerts", response_model=list[AlertRead], openapi_extra=role(Role.read)
)
async def read_alerts(
    name: UseCaseNamePath,
    request: Request,
    since: Annotated[UtcTime | None, Query(description="inclusive")] = None,
) -> list[AlertRead]:
    """The use case's alerts, oldest first, with how their webhook delivery went."""
    return await watch(request).alerts(name, since=since)
