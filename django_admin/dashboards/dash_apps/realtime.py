"""The real-time dashboard: the live stream of predictions of the chosen services, redrawn
every few seconds without a page reload, and for an anomaly service its anomaly score
with the model's threshold and the flagged spans shaded, and its anomaly rate. Each line
is downsampled (LTTB) to a bounded number of points, so a long window stays as smooth as
a short one, and breaks where the readings stop. Each use case has its own subplot and
y axis, as their values are in different units. Services, window and anomaly service are
kept in the page's URL (?service=...&service=...&window=...&anomaly=...); without them
the services with the newest finished jobs are shown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update
from django_plotly_dash import DjangoDash

from django_admin.dashboards import data
from django_admin.dashboards.dash_apps import task_figures
from django_admin.dashboards.dash_apps.common import (
    PAGE_STYLE,
    ROW_STYLE,
    SEE_NOTICE,
    TIME_AXIS,
    TIME_HOVER,
    UrlField,
    add_notice,
    failure_text,
    fall_back_in_browser,
    fallback,
    graph,
    graph_cells,
    grow_with_subplots,
    keep_selection_in_url,
    labelled,
    message_figure,
    notice_area,
    selection_store,
    services_with_data_first,
    stacked_figure,
    target_title,
    url_store,
)
from django_admin.dashboards.downsample import downsample
from gits_common import errors
from gits_common.schemas import Task, UseCase

NAME = "gits_realtime"
REFRESH_SECONDS = 3
SERVICES_REFRESH_SECONDS = 30
REPORT_REFRESH_SECONDS = 15  # monitoring_api's anomaly report (threshold, alert state)
WINDOWS = {
    "5 minutes": timedelta(minutes=5),
    "30 minutes": timedelta(minutes=30),
    "2 hours": timedelta(hours=2),
}
URL_FIELDS = (
    UrlField("service", "services", many=True),
    UrlField("window", "window", choices=tuple(WINDOWS)),
    UrlField("anomaly", "anomaly-service"),
)
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
# The unit of each task's value (a regression's is its target's: see `value_title`).
LIVE_UNITS = {
    Task.classification: "probability (0-1)",
    Task.anomaly: "anomaly score (the model's own scale)",
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
        dcc.Store(id="services-fallback"),
        dcc.Store(id="anomaly-fallback"),
        selection_store(),
        url_store(),
        dcc.Interval(id="refresh", interval=REFRESH_SECONDS * 1000),
        dcc.Interval(id="refresh-services", interval=SERVICES_REFRESH_SECONDS * 1000),
        dcc.Interval(id="refresh-report", interval=REPORT_REFRESH_SECONDS * 1000),
    ],
    style=PAGE_STYLE,
)


@app.callback(
    Output("services", "options"),
    Output("services-fallback", "data"),
    Output("service-use-cases", "data"),
    Output("anomaly-service", "options"),
    Output("anomaly-fallback", "data"),
    Output("anomaly-section", "style"),
    Output("services-notice", "data"),
    Input("refresh-services", "n_intervals"),
    State("services", "value"),
    State("anomaly-service", "value"),
    State("selection", "data"),
)
def list_services(
    _n: int | None,
    current: list[str] | None,
    anomaly_chosen: str | None,
    wanted: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """The services to choose from, keeping the current choice, else those the URL asks
    for, else the first few with the newest finished jobs; and the anomaly services among
    them, whose section shows only when there is one."""
    try:
        found = data.services()
    except errors.GitsError as exc:
        text = failure_text("The list of services (queue_manager)", exc)
        return [], no_update, {}, [], no_update, HIDDEN, [text]
    names = [s.name for s in found]
    messages: list[str] = []
    anomalous = []
    for service in found:
        try:
            if data.use_case(service.use_case).task is Task.anomaly:
                anomalous.append(service.name)
        except errors.GitsError as exc:
            messages.append(failure_text(f"The task of {service.use_case} (ml_data_api)", exc))
    standing = bool(current) and all(n in names for n in current or [])
    asked = [n for n in (wanted or {}).get("service") or [] if n in names]
    asked_anomaly = (wanted or {}).get("anomaly")
    ordered = names
    # Only when a choice must be made is it worth asking which services have data.
    if not (standing or asked) or (anomalous and anomaly_chosen not in anomalous):
        ordered, more = services_with_data_first(names)
        messages += more
    kept = [n for n in current or [] if n in names] or asked or ordered[:DEFAULT_SERVICES]
    section = {"display": "block"} if anomalous else HIDDEN
    use_cases = {s.name: s.use_case for s in found}
    busy = [n for n in ordered if n in anomalous]
    anomaly_kept: Any = no_update
    if anomaly_chosen not in anomalous:
        anomaly_kept = fallback(asked_anomaly, busy)
    kept_or_not: Any = no_update if standing else kept
    return names, kept_or_not, use_cases, anomalous, anomaly_kept, section, messages


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
    _n: int | None, picked: list[str] | None, window_label: str, use_cases: dict[str, str] | None
) -> tuple[Any, ...]:
    """The chosen services' predictions over the window, downsampled."""
    shown = [s for s in picked or [] if s in (use_cases or {})]
    if not shown:
        text = "No service chosen: choose one above (services are bound in queue_manager)."
        return message_figure(TITLE, text), "", []
    window = WINDOWS.get(window_label, timedelta(minutes=5))
    streams, tasks, definitions, messages = {}, {}, {}, []
    for service in shown:
        name = (use_cases or {})[service]
        try:
            definition = data.use_case(name)
            streams[service] = FEED.rows(definition, window=window)
            tasks[service] = definition.task
            definitions[service] = definition
        except errors.GitsError as exc:
            messages.append(failure_text(f"Predictions of {service} (ml_data_api)", exc))
    drawn = live_figure(streams, window_label, tasks=tasks, definitions=definitions)
    return drawn, summary(streams), messages


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
keep_selection_in_url(app, URL_FIELDS)
fall_back_in_browser(app, "services", "services-fallback")
fall_back_in_browser(app, "anomaly-service", "anomaly-fallback")
grow_with_subplots(app, "live", base=180, per=300)


def live_figure(
    streams: dict[str, pd.DataFrame],
    window_label: str,
    *,
    tasks: dict[str, Task],
    definitions: dict[str, UseCase] | None = None,
) -> go.Figure:
    """One line per service, each at most `POINTS_PER_LINE` points (plus a break at each
    gap in its readings), of what its task's rows say as a number (`LIVE_VALUES`): a
    regression's prediction, a classifier's probability of the predicted class, an
    anomaly model's score. Services of one use case (`definitions`, by service) share a
    subplot; each use case has its own, stacked on one time axis (UTC), with a y axis
    titled in its unit (`value_title`), as two use cases' values are rarely in one unit."""
    if not any(len(rows) for rows in streams.values()):
        return message_figure(TITLE, f"No prediction in the last {window_label}.")
    known = definitions or {}
    # A service without a prediction in the window gets no subplot (the summary says so).
    streams = {service: rows for service, rows in streams.items() if len(rows)}
    groups = list(dict.fromkeys(_group(service, known) for service in streams))
    fig = stacked_figure(f"{TITLE}, last {window_label}", len(groups))
    # The same uirevision keeps the user's zoom and hidden lines across refreshes.
    fig.update_layout(uirevision=window_label, showlegend=True)
    for service, rows in streams.items():
        task = tasks.get(service, Task.regression)
        column, meaning = LIVE_VALUES[task]
        row = groups.index(_group(service, known)) + 1
        drawn = downsample(rows, x="time", y=column, points=POINTS_PER_LINE, gaps=True)
        fig.add_scatter(
            x=drawn["time"],
            y=drawn[column],
            name=service,
            mode="lines",
            connectgaps=False,
            customdata=drawn["model_version"],
            hovertemplate=TIME_HOVER
            + "<br>"
            + meaning
            + " %{y}<br>model %{customdata}<extra>"
            + service
            + "</extra>",
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=value_title(task, known.get(service)), row=row, col=1)
    fig.update_xaxes(title_text=TIME_AXIS, row=len(groups), col=1)
    return fig


def _group(service: str, definitions: dict[str, UseCase]) -> str:
    """The subplot a service's line goes in: its use case's (its own when unknown)."""
    found = definitions.get(service)
    return found.name if found else f"service {service}"


def value_title(task: Task, definition: UseCase | None) -> str:
    """A y axis's title: the use case's name and what its values are in. A regression's
    are its target's unit, which no use case declares (its schema has no unit), so the
    title names the target and says the unit is not declared."""
    if definition is None:
        return "prediction (unit not declared)" if task is Task.regression else LIVE_UNITS[task]
    if task is Task.regression:
        return f"{definition.name}: {target_title(definition)}"
    return f"{definition.name}: {LIVE_UNITS[task]}"


def summary(streams: dict[str, pd.DataFrame]) -> str:
    """What the graph holds: predictions per service, points drawn, the newest time."""
    parts = []
    for service, rows in streams.items():
        if rows.empty:
            parts.append(f"{service}: no prediction")
            continue
        drawn = min(len(rows), POINTS_PER_LINE)
        newest = rows["time"].iloc[-1].strftime("%H:%M:%S UTC")
        parts.append(f"{service}: {len(rows):,} predictions, {drawn:,} drawn, newest {newest}")
    return "; ".join(parts)
