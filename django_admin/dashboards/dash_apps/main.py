"""The main dashboard: how one service's work goes (jobs by status, throughput, processing
time, dead letters), what its use case holds (rows per table), and the service's own
latest predictions drawn as its task needs: against the ground truth for regression;
confusion matrix, class balance and score distribution for classification; anomaly score
with threshold and flagged spans, and anomaly rate, for anomaly detection. Refreshes
every few seconds. The chosen service is kept in the page's URL (?service=...); without
one, the service with the newest finished job is shown."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update
from django_plotly_dash import DjangoDash

from django_admin.dashboards import data
from django_admin.dashboards.dash_apps import task_figures
from django_admin.dashboards.dash_apps.common import (
    CELL_STYLE,
    NO_VALUE,
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
    figure,
    graph,
    graph_cells,
    keep_selection_in_url,
    kpi,
    labelled,
    message_figure,
    notice_area,
    selection_store,
    services_with_data_first,
    target_title,
    url_store,
)
from django_admin.dashboards.downsample import gap_threshold, with_gaps
from gits_common import errors
from gits_common.schemas import Task, UseCase

NAME = "gits_main"
URL_FIELDS = (UrlField("service", "service"),)
REFRESH_SECONDS = 5
JOB_WINDOW = timedelta(minutes=15)
# Each callback's failures, gathered into the one notice above the graphs.
NOTICES = ["services-notice", "jobs-notice", "data-notice", "amqp-notice"]
STATUS_COLOURS = {
    "queued": "#9fb3c8",
    "processing": "#f0b429",
    "finished": "#2f8132",
    "failed": "#d64545",
}

app = DjangoDash(NAME)
app.layout = html.Div(
    [
        html.Div(
            [
                labelled("Service", dcc.Dropdown(id="service", clearable=False)),
                html.Div(id="use-case", style={"color": "#52606d"}),
            ],
            style=ROW_STYLE,
        ),
        *notice_area(NOTICES),
        html.Div(
            [
                kpi("Jobs finished", "kpi-finished"),
                kpi("Jobs failed", "kpi-failed"),
                kpi("Dead-lettered messages", "dead-letters"),
                kpi("Production rows (whole use case)", "kpi-production"),
            ],
            style={**ROW_STYLE, "margin": "8px 0"},
        ),
        html.Div(
            [
                html.Div(graph("jobs-by-status", 300), style=CELL_STYLE),
                html.Div(graph("row-counts", 300), style=CELL_STYLE),
                html.Div(graph("throughput", 320), style=CELL_STYLE),
                html.Div(graph("processing-time", 320), style=CELL_STYLE),
            ],
            style=ROW_STYLE,
        ),
        html.Div(graph("predictions", 420), id="task-graphs", style=ROW_STYLE),
        dcc.Store(id="service-use-cases"),
        dcc.Store(id="service-fallback"),
        selection_store(),
        url_store(),
        dcc.Interval(id="refresh", interval=REFRESH_SECONDS * 1000),
    ],
    style=PAGE_STYLE,
)


@app.callback(
    Output("service", "options"),
    Output("service-fallback", "data"),
    Output("service-use-cases", "data"),
    Output("services-notice", "data"),
    Input("refresh", "n_intervals"),
    State("service", "value"),
    State("selection", "data"),
)
def list_services(
    _n: int | None, current: str | None, wanted: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    """The services to choose from, and the choice for when the current one is gone or
    not made (no_update while it stands): the one the URL asks for, else the one with
    the newest finished job (the first name without any). The browser applies it
    (`fall_back_in_browser`)."""
    try:
        found = data.services()
    except errors.GitsError as exc:
        text = failure_text("The list of services (queue_manager)", exc)
        return [], no_update, {}, [text]
    names = [s.name for s in found]
    use_cases = {s.name: s.use_case for s in found}
    if current in names:
        return names, no_update, use_cases, []
    asked = (wanted or {}).get("service")
    messages: list[str] = []
    if asked not in names:
        names_first, messages = services_with_data_first(names)
        asked = names_first[0] if names_first else None
    return names, fallback(asked, names), use_cases, messages


@app.callback(
    Output("jobs-by-status", "figure"),
    Output("throughput", "figure"),
    Output("processing-time", "figure"),
    Output("kpi-finished", "children"),
    Output("kpi-failed", "children"),
    Output("jobs-notice", "data"),
    Input("refresh", "n_intervals"),
    Input("service", "value"),
)
def show_jobs(_n: int | None, service: str | None) -> tuple[Any, ...]:
    """Jobs by status, throughput and processing time of the chosen service, over the
    last `JOB_WINDOW` (or the part of it its newest `data.MAX_JOBS` jobs cover)."""
    if not service:
        text = "No service to show: once one is bound in queue_manager it appears here."
        titles = ("Jobs by status", "Throughput", "Processing time")
        return (*(message_figure(t, text) for t in titles), NO_VALUE, NO_VALUE, [])
    now = data.now()
    try:
        counts = data.job_counts(service)
        jobs = data.recent_jobs(service, window=JOB_WINDOW)
    except errors.GitsError as exc:
        titles = ("Jobs by status", "Throughput", "Processing time")
        blank = [message_figure(t, SEE_NOTICE) for t in titles]
        return (*blank, NO_VALUE, NO_VALUE, [failure_text("Jobs (queue_manager)", exc)])
    start = data.observed_since(jobs, since=now - JOB_WINDOW, limit=data.MAX_JOBS)
    bucket = data.bucket_for(pd.Series([start, now]))
    rates = data.throughput(jobs, bucket=bucket, start=start, end=now)
    return (
        status_figure(counts),
        throughput_figure(rates, bucket, now=now),
        processing_figure(data.processing_time(jobs, bucket=bucket), bucket),
        f"{counts['finished']:,}",
        f"{counts['failed']:,}",
        [],
    )


@app.callback(
    Output("task-graphs", "children"),
    Output("row-counts", "figure"),
    Output("kpi-production", "children"),
    Output("use-case", "children"),
    Output("data-notice", "data"),
    Input("refresh", "n_intervals"),
    Input("service", "value"),
    State("service-use-cases", "data"),
)
def show_data(
    _n: int | None, service: str | None, use_cases: dict[str, str] | None
) -> tuple[Any, ...]:
    """The chosen service's own latest predictions (`data.service_rows`), drawn as its
    use case's task needs, and the row counts of that use case."""
    name = (use_cases or {}).get(service or "")
    if service is None or name is None:
        text = "No service to show: once one is bound in queue_manager it appears here."
        blank = graph_cells({"predictions": message_figure("Latest predictions", text)})
        return (blank, message_figure("Rows per table", text), NO_VALUE, "", [])
    sharing = sum(1 for other in (use_cases or {}).values() if other == name)
    try:
        definition = data.use_case(name)
        own = data.service_rows(definition, service=service, sharing=sharing)
        counts = data.row_counts(name)
    except errors.GitsError as exc:
        text = failure_text(f"Predictions of {service} in use case {name}", exc)
        blank = graph_cells({"predictions": message_figure("Latest predictions", SEE_NOTICE)})
        about = f"use case {name}"
        return (blank, message_figure("Rows per table", SEE_NOTICE), NO_VALUE, about, [text])
    production = f"{counts.get('production', 0):,}"
    about = (
        f"use case {name} ({definition.task.value}); the predictions drawn are {service}'s "
        f"own: {own.source}"
    )
    figures = task_figures_of(definition, own.rows)
    return graph_cells(figures), counts_figure(counts, name), production, about, []


def task_figures_of(definition: UseCase, rows: pd.DataFrame) -> dict[str, go.Figure]:
    """The figures of the use case's task, by graph id: for an anomaly use case the
    threshold comes from monitoring_api (for the same newest rows), or a sentence why not."""
    if definition.task is Task.classification:
        return {
            "confusion-matrix": task_figures.confusion_figure(rows),
            "class-balance": task_figures.class_balance_figure(rows),
            "score-distribution": task_figures.score_distribution_figure(rows),
        }
    if definition.task is Task.anomaly:
        bucket = pd.Timedelta(data.bucket_for(rows["time"])).total_seconds()
        found = task_figures.read_anomaly_report(
            definition.name, last=max(len(rows), 1), bucket_seconds=max(int(bucket), 1)
        )
        return task_figures.anomaly_figures(rows, found)
    return {"predictions": predictions_figure(rows, value_title=target_title(definition))}


@app.callback(
    Output("dead-letters", "children"),
    Output("amqp-notice", "data"),
    Input("refresh", "n_intervals"),
    Input("service", "value"),
)
def show_dead_letters(_n: int | None, service: str | None) -> tuple[str, list[str]]:
    """How many messages of the service wait in its dead-letter queue (RabbitMQ)."""
    if not service:
        return NO_VALUE, []
    try:
        count = data.dead_letters(service)
    except errors.GitsError as exc:
        return NO_VALUE, [failure_text("The dead-letter count (RabbitMQ)", exc)]
    return ("0 (no queue yet)" if count is None else f"{count:,}"), []


add_notice(app, NOTICES)
keep_selection_in_url(app, URL_FIELDS)
fall_back_in_browser(app, "service", "service-fallback")


def status_figure(counts: dict[str, int]) -> go.Figure:
    """Jobs per status, as bars."""
    fig = figure("Jobs by status")
    statuses = list(counts)
    fig.add_bar(
        x=statuses,
        y=[counts[s] for s in statuses],
        text=[f"{counts[s]:,}" for s in statuses],
        marker_color=[STATUS_COLOURS.get(s, "#486581") for s in statuses],
    )
    return fig


def throughput_figure(
    rates: pd.DataFrame, bucket: str, *, now: datetime | None = None
) -> go.Figure:
    """Messages handled per second over time (`data.throughput`'s frame), one line per
    final status; buckets without an ended job are drawn at 0. When `now` is given, a
    note says how the current bucket, still filling, is drawn (rated over its seconds so
    far, or left out while less than `data.MIN_OBSERVED` of it has passed)."""
    if rates.empty:
        return message_figure("Throughput", "No job has ended in the last 15 minutes.")
    fig = figure(
        f"Throughput (messages/s, per {bucket})",
        xaxis={"title": TIME_AXIS},
        yaxis={"title": "messages/s", "rangemode": "tozero"},
    )
    for status, part in rates.groupby("status"):
        fig.add_scatter(
            x=part["time"],
            y=part["per_second"],
            name=str(status),
            mode="lines+markers",
            line_color=STATUS_COLOURS.get(str(status)),
            customdata=part[["jobs", "seconds"]],
            hovertemplate=TIME_HOVER
            + "<br>%{y:.3g} messages/s (%{customdata[0]} in %{customdata[1]:.0f} s)<extra>"
            + str(status)
            + "</extra>",
        )
    note = current_bucket_note(bucket, now)
    if note:
        fig.add_annotation(
            text=note, showarrow=False, x=0, y=1.0, xref="paper", yref="paper",
            xanchor="left", yanchor="bottom", font={"size": 11, "color": "#52606d"},
        )  # fmt: skip
    return fig


def current_bucket_note(bucket: str, now: datetime | None) -> str | None:
    """How the throughput draws the bucket `now` falls in (None: `now` unknown, or on a
    bucket's edge, so every drawn bucket is whole)."""
    if now is None:
        return None
    length = pd.Timedelta(bucket).total_seconds()
    elapsed = (pd.Timestamp(now) - pd.Timestamp(now).floor(bucket)).total_seconds()
    if elapsed <= 0:
        return None
    if elapsed < data.MIN_OBSERVED * length:
        return f"The current {bucket} ({elapsed:.0f} s so far) is left out until half is over."
    return f"The current {bucket} is rated over its {elapsed:.0f} s so far."


def processing_figure(timing: pd.DataFrame, bucket: str) -> go.Figure:
    """Seconds from a job's start to its end over time: mean and maximum per bucket; the
    lines break over buckets in which no job ended (nothing was measured there)."""
    if timing.empty:
        return message_figure("Processing time", "No job has ended in the last 15 minutes.")
    fig = figure(
        f"Processing time (s, per {bucket})",
        xaxis={"title": TIME_AXIS},
        yaxis={"title": "seconds", "rangemode": "tozero"},
    )
    # Consecutive buckets are one bucket apart; a missing one makes a longer step.
    drawn = with_gaps(timing, x="time", threshold=1.5 * pd.Timedelta(bucket).total_seconds())
    hover = TIME_HOVER + "<br>%{y:.3g} s<extra>%{fullData.name}</extra>"
    fig.add_scatter(
        x=drawn["time"], y=drawn["mean"], name="mean", mode="lines+markers",
        connectgaps=False, hovertemplate=hover,
    )  # fmt: skip
    fig.add_scatter(
        x=drawn["time"], y=drawn["max"], name="max", mode="lines", line_dash="dot",
        connectgaps=False, hovertemplate=hover,
    )  # fmt: skip
    return fig


def predictions_figure(rows: pd.DataFrame, *, value_title: str = "prediction") -> go.Figure:
    """The latest predictions against time (UTC), one line per model version, and the
    ground truth where it has arrived; `value_title` names the value axis. A line breaks
    where the readings stop for longer than `downsample.GAP_FACTOR` times their usual
    step, instead of joining the two sides with a straight line."""
    if rows.empty:
        return message_figure("Latest predictions", "No prediction stored yet.")
    fig = figure(
        f"Latest {len(rows):,} predictions and the ground truth",
        xaxis={"title": TIME_AXIS},
        yaxis={"title": value_title},
    )
    threshold = gap_threshold(rows["time"])
    hover = TIME_HOVER + "<br>%{y}<extra>%{fullData.name}</extra>"
    for version, part in rows.groupby(rows["model_version"].fillna("unknown model")):
        drawn = with_gaps(part, x="time", threshold=threshold, source=rows)
        fig.add_scatter(
            x=drawn["time"],
            y=drawn["prediction"],
            name=f"prediction ({version})",
            mode="lines",
            connectgaps=False,
            hovertemplate=hover,
        )
    truth = rows.dropna(subset=["target"])
    fig.add_scatter(
        x=truth["time"],
        y=truth["target"],
        name=f"ground truth ({len(truth):,} arrived)",
        mode="markers",
        marker={"color": "#d64545", "size": 7},
        hovertemplate=hover,
    )
    return fig


def counts_figure(counts: dict[str, int], name: str = "") -> go.Figure:
    """Rows per table of the use case `name` (all its services' together)."""
    fig = figure(f"Rows per table of use case {name}" if name else "Rows per table")
    tables = list(counts)
    fig.add_bar(x=tables, y=[counts[t] for t in tables], text=[f"{counts[t]:,}" for t in tables])
    return fig
