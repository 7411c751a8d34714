"""HTTP routes of monitoring_api: parse, delegate to the services, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from gits_common import errors
from gits_common.http import UseCaseNamePath, error_responses, role
from gits_common.monitoring import (
    AlertAcknowledge,
    AlertRead,
    AnomaliesRead,
    ClassificationRead,
    EstimatedRead,
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
from monitoring_api.tasks import TaskService
from monitoring_api.watch import Watch

router = APIRouter(prefix="/monitoring_api")

MAX_WINDOW_ROWS = 100_000
MAX_BUCKET_SECONDS = 31 * 24 * 3600  # a month: a window holds 100,000 rows at most anyway
Last = Annotated[
    int | None,
    Query(ge=1, le=MAX_WINDOW_ROWS, description="the newest N production rows (default 1000)"),
]
Start = Annotated[UtcTime | None, Query(description="window start, inclusive")]
End = Annotated[UtcTime | None, Query(description="window end, exclusive")]
BucketSeconds = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_BUCKET_SECONDS,
        description="width of a time bucket of the rows' time column, in seconds, aligned "
        "on the Unix epoch; buckets without rows are left out",
    ),
]
WRONG_TASK: dict[int | str, dict[str, Any]] = {
    409: {"description": "The use case is of another task than the endpoint needs"}
}
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


def tasks(request: Request) -> TaskService:
    """The app's task-specific answers."""
    service: TaskService = request.app.state.tasks
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
    last: Last = None,
    start: Start = None,
    end: End = None,
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
    "/use_cases/{name}/history/latest", response_model=HistoryRead, openapi_extra=role(Role.read)
)
async def read_latest_point(name: UseCaseNamePath, request: Request) -> HistoryRead:
    """The values of the use case's newest history point (drift share, drift per
    feature, realised, reference and estimated performance); when there is none,
    `reason` says why, as the history does."""
    return await watch(request).latest(name)


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


@router.post(
    "/use_cases/{name}/alerts/{alert_id}/acknowledge",
    response_model=AlertRead,
    responses=error_responses({errors.NotFound: "The use case has no such alert"}),
    openapi_extra=role(Role.admin),
)
async def acknowledge_alert(
    name: UseCaseNamePath,
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: AlertAcknowledge,
    request: Request,
) -> AlertRead:
    """Acknowledge an alert: it stops counting as open. The first acknowledgement
    stands (who and when); acknowledging again answers the alert as it is."""
    return await watch(request).acknowledge(name, alert_id, body.by)


@router.get("/alerts", response_model=list[AlertRead], openapi_extra=role(Role.read))
async def read_open_alerts(
    request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> list[AlertRead]:
    """Every use case's open (unacknowledged) alerts, newest first."""
    return await watch(request).open_alerts(limit)


@router.get(
    "/use_cases/{name}/classification",
    response_model=ClassificationRead,
    responses=WRONG_TASK,
    openapi_extra=role(Role.read),
)
async def classification(
    name: UseCaseNamePath,
    request: Request,
    reference: Reference = Reference.training,
    last: Last = None,
    start: Start = None,
    end: End = None,
) -> ClassificationRead:
    """A classification use case's realised performance on the window's labelled rows:
    accuracy, precision, recall and F1 (macro and per class), ROC AUC (binary: the
    positive class is the minority class of the reference table), the confusion matrix,
    and the drift of the predicted probabilities against the bound model's on the
    reference rows. 409 for a use case of another task."""
    window = WindowQuery(last=last, start=start, end=end)
    return await tasks(request).classification(name, window, reference)


@router.get(
    "/use_cases/{name}/anomalies",
    response_model=AnomaliesRead,
    responses=WRONG_TASK,
    openapi_extra=role(Role.read),
)
async def anomalies(
    name: UseCaseNamePath,
    request: Request,
    last: Last = None,
    start: Start = None,
    end: End = None,
    bucket_seconds: BucketSeconds = 300,
    merge_seconds: Annotated[
        float | None,
        Query(
            gt=0,
            le=MAX_BUCKET_SECONDS,
            description="flagged rows less than this many seconds apart are one event "
            "(default: two buckets)",
        ),
    ] = None,
) -> AnomaliesRead:
    """An anomaly use case's flags over the window: the flagged share per time bucket,
    the flagged events with their time spans and scores, the whole window's anomaly
    rate against the use case's `anomaly_rate` threshold, the bound model's score
    threshold, and realised precision, recall and F1 where labels came. 409 for a use
    case of another task."""
    window = WindowQuery(last=last, start=start, end=end)
    limits = await watch(request).thresholds(name)
    return await tasks(request).anomalies(
        name, window, limits=limits, bucket_seconds=bucket_seconds, merge_seconds=merge_seconds
    )


@router.get(
    "/use_cases/{name}/performance/estimated",
    response_model=EstimatedRead,
    openapi_extra=role(Role.read),
)
async def estimated_performance(
    name: UseCaseNamePath,
    request: Request,
    last: Last = None,
    start: Start = None,
    end: End = None,
    bucket_seconds: BucketSeconds = 3600,
) -> EstimatedRead:
    """Performance estimated before the labels arrive, per time bucket and for the
    window: CBPE (classification: expected accuracy, and for binary macro precision,
    recall and F1) or DLE (regression: MAE, RMSE), each fitted on the testing table
    scored by the bound model; beside it the realised metric where labels came, and the
    model's on the reference. Anomaly use cases answer without an estimate (`reason`)."""
    window = WindowQuery(last=last, start=start, end=end)
    return await tasks(request).estimated(name, window, bucket_seconds=bucket_seconds)
