"""The real-time dashboard: the live stream of predictions of the chosen services, redrawn
every few seconds without a page reload, and for an anomaly service its anomaly score
with the model's threshold and the flagged spans shaded, and its anomaly rate. Each line
is downsampled (LTTB) to a bounded number of points, so a long window stays as smooth as
a short one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from django_plotly_dash import DjangoDash

from django_admin.dashboards import data
from django_admin.dashboards.dash_apps import task_figures
from django_admin.dashboards.dash_apps.common import (
    PAGE_STYLE,
    ROW_STYLE,
    SEE_NOTICE,
    add_notice,
    failure_text,
    figure,
    graph,
    graph_cells,
    kept_or_first,
    labelled,
    message_figure,
    notice_area,
)
from django_admin.dashboards.downsample import downsample
from gits_common import errors
from gits_common.schemas import Task

NAME = "gits_realtime"
REFRESH_SECONDS = 3
SERVICES_REFRESH_SECONDS = 30
REPORT_REFRESH_SECONDS = 15  # monitoring_api's anomaly report (threshold, alert state)
WINDOWS = {
    "5 minutes": timedelta(minutes=5),
    "30 minutes": timedelta(minutes=30),
    "2 hours": timedelta(hours=2),
}
POINTS_PER_LINE = 1000
DEFAULT_SERVICES = 3  # preselected when nothing is chosen yet
TITLE = "Live predictions"
NOTICES = ["services-notice", "stream-notice", "anomaly-notice"]
# What the live graph draws of each task's rows: a column, and what it means.
LIVE_VALUES = {
    Task.regression: ("prediction", "prediction"),
    Task.classification: ("prediction_score", "probability of the predicted class"),
    Task.anomaly: ("prediction_score", "anomaly score"),
}
HIDDEN = {"display": "none"}
WIDE = {"width": "100%"}

FEED = data.LiveFeed()

app = DjangoDash(NAME)
app.layout = html.Div(
    [
        html.Div(
            [
                labelled("Services", dcc.Dropdown(id="services", multi=True), width="480px"),
                labelled(
                    "Window",
                    dcc.Dropdown(
                        id="window",
                        options=list(WINDOWS),
                        value="5 minutes",
                        clearable=False,
                    ),
                    width="160px",
                ),
            ],
            style=ROW_STYLE,
        ),
        *notice_area(NOTICES),
        graph("live", 480),
        html.Div(id="summary", style={"color": "#52606d"}),
        html.Div(
            [
                html.H3("Anomalies", style={"margin": "16px 0 4px"}),
                labelled("Anomaly service", dcc.Dropdown(id="anomaly-service", clearable=False)),
                # Graphs made by show_anomalies: one loaded in this hidden part never draws.
                html.Div(id="anomaly-graphs"),
                html.Div(id="anomaly-summary", style={"color": "#52606d"}),
            ],
            id="anomaly-section",
            style=HIDDEN,
        ),
        dcc.Store(id="service-use-cases"),
        dcc.Store(id="anomaly-report"),
        dcc.Interval(id="refresh", interval=REFRESH_SECONDS * 1000),
        dcc.Interval(id="refresh-services", interval=SERVICES_REFRESH_SECONDS * 1000),
        dcc.Interval(id="refresh-report", interval=REPORT_REFRESH_SECONDS * 1000),
    ],
    style=PAGE_STYLE,
)


@app.callback(
    Output("services", "options"),
    Output("services", "value"),
    Output("service-use-cases", "data"),
    Output("anomaly-service", "options"),
    Output("anomaly-service", "value"),
    Output("anomaly-section", "style"),
    Output("services-notice", "data"),
    Input("refresh-services", "n_intervals"),
    State("services", "value"),
    State("anomaly-service", "value"),
)
def list_services(
    _n: int | None, chosen: list[str] | None, anomaly_chosen: str | None
) -> tuple[Any, ...]:
    """The services to choose from (the first few are chosen until the user chooses),
    and the anomaly services among them, whose section shows only when there is one."""
    try:
        found = data.services()
    except errors.GitsError as exc:
        text = failure_text("The list of services (queue_manager)", exc)
        return [], chosen, {}, [], anomaly_chosen, HIDDEN, [text]
    names = [s.name for s in found]
    kept = [name for name in chosen or [] if name in names] or names[:DEFAULT_SERVICES]
    messages: list[str] = []
    anomalous = []
    for service in found:
        try:
            if data.use_case(service.use_case).task is Task.anomaly:
                anomalous.append(service.name)
        except errors.GitsError as exc:
            messages.append(failure_text(f"The task of {service.use_case} (ml_data_api)", exc))
    section = {"display": "block"} if anomalous else HIDDEN
    use_cases = {s.name: s.use_case for s in found}
    anomaly_kept = kept_or_first(anomaly_chosen, anomalous)
    return names, kept, use_cases, anomalous, anomaly_kept, section, messages


@app.callback(
    Output("live", "figure"),
    Output("summary", "children"),
    Output("stream-notice", "data"),
    Input("refresh", "n_intervals"),
    Input("services", "value"),
    Input("window", "value"),
    State("service-use-cases", "data"),
)
def show_stream(
    _n: int | None, chosen: list[str] | None, window_label: str, use_cases: dict[str, str] | None
) -> tuple[Any, ...]:
    """The chosen services' predictions over the window, downsampled."""
    chosen = [s for s in chosen or [] if s in (use_cases or {})]
    if not chosen:
        text = "No service chosen: choose one above (services are bound in queue_manager)."
        return message_figure(TITLE, text), "", []
    window = WINDOWS.get(window_label, timedelta(minutes=5))
    streams, tasks, messages = {}, {}, []
    for service in chosen:
        name = (use_cases or {})[service]
        try:
            definition = data.use_case(name)
            streams[service] = FEED.rows(definition, window=window)
            tasks[service] = definition.task
        except errors.GitsError as exc:
            messages.append(failure_text(f"Predictions of {service} (ml_data_api)", exc))
    return live_figure(streams, window_label, tasks=tasks), summary(streams), messages


@app.callback(
    Output("anomaly-report", "data"),
    Input("refresh-report", "n_intervals"),
    Input("anomaly-service", "value"),
    Input("window", "value"),
    State("service-use-cases", "data"),
)
def read_report(
    _n: int | None, service: str | None, window_label: str, use_cases: dict[str, str] | None
) -> dict[str, Any] | None:
    """monitoring_api's anomaly report of the anomaly service's use case over the
    window (threshold, rate, alert state), or the sentence saying why there is none;
    read less often than the stream, as it changes only with the model and the window."""
    name = (use_cases or {}).get(service or "")
    if name is None:
        return None
    window = WINDOWS.get(window_label, timedelta(minutes=5))
    found = task_figures.read_anomaly_report(
        name, start=data.now() - window, bucket_seconds=_bucket_seconds(window)
    )
    return task_figures.to_store(found)


@app.callback(
    Output("anomaly-graphs", "children"),
    Output("anomaly-summary", "children"),
    Output("anomaly-notice", "data"),
    Input("refresh", "n_intervals"),
    Input("anomaly-service", "value"),
    Input("window", "value"),
    # State, not Input: Dash would hold every redraw while a report is being read.
    State("anomaly-report", "data"),
    State("service-use-cases", "data"),
)
def show_anomalies(
    _n: int | None,
    service: str | None,
    window_label: str,
    stored: dict[str, Any] | None,
    use_cases: dict[str, str] | None,
) -> tuple[Any, ...]:
    """The anomaly service's score with its threshold and flagged spans, and its rate."""
    name = (use_cases or {}).get(service or "")
    if name is None:
        return [], "", []
    window = WINDOWS.get(window_label, timedelta(minutes=5))
    try:
        rows = FEED.rows(data.use_case(name), window=window)
    except errors.GitsError as exc:
        text = failure_text(f"Predictions of {service} (ml_data_api)", exc)
        return [], SEE_NOTICE, [text]
    found = task_figures.from_store(stored)
    return (
        graph_cells(task_figures.anomaly_figures(rows, found), style=WIDE),
        task_figures.report_summary(found),
        [],
    )


def _bucket_seconds(window: timedelta) -> int:
    """The bucket of a window's rates: `data.bucket_for` of the window's span."""
    span = pd.Series([data.now() - window, data.now()])
    return max(int(pd.Timedelta(data.bucket_for(span)).total_seconds()), 1)


add_notice(app, NOTICES)


def live_figure(
    streams: dict[str, pd.DataFrame], window_label: str, *, tasks: dict[str, Task]
) -> go.Figure:
    """One line per service, each at most `POINTS_PER_LINE` points, of what its task's
    rows say as a number (`LIVE_VALUES`): a regression's prediction, a classifier's
    probability of the predicted class, an anomaly model's score."""
    if not any(len(rows) for rows in streams.values()):
        return message_figure(TITLE, f"No prediction in the last {window_label}.")
    # The same uirevision keeps the user's zoom and hidden lines across refreshes.
    fig = figure(
        f"{TITLE}, last {window_label}",
        uirevision=window_label,
        showlegend=True,
        xaxis={"title": task_figures.TIME_AXIS},
        yaxis={"title": "prediction or score (hover: which)"},
    )
    for service, rows in streams.items():
        column, meaning = LIVE_VALUES[tasks.get(service, Task.regression)]
        drawn = downsample(rows, x="time", y=column, points=POINTS_PER_LINE)
        fig.add_scatter(
            x=drawn["time"],
            y=drawn[column],
            name=service,
            mode="lines",
            customdata=drawn["model_version"],
            hovertemplate="%{x}<br>"
            + meaning
            + " %{y}<br>model %{customdata}<extra>"
            + service
            + "</extra>",
        )
    return fig


def summary(streams: dict[str, pd.DataFrame]) -> str:
    """What the graph holds: predictions per service, points drawn, the newest time."""
    parts = []
    for service, rows in streams.items():
        if rows.empty:
            parts.append(f"{service}: no prediction")
            continue
        drawn = min(len(rows), POINTS_PER_LINE)
        newest = rows["time"].iloc[-1].strftime("%H:%M:%S")
        parts.append(f"{service}: {len(rows):,} predictions, {drawn:,} drawn, newest {newest}")
    return "; ".join(parts)
