"""The main dashboard: how one service's work goes (jobs by status, throughput, processing
time, dead letters) and what its use case holds (rows per table, and the latest
predictions drawn as its task needs: against the ground truth for regression; confusion
matrix, class balance and score distribution for classification; anomaly score with
threshold and flagged spans, and anomaly rate, for anomaly detection). Refreshes every
few seconds."""

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
    CELL_STYLE,
    NO_VALUE,
    PAGE_STYLE,
    ROW_STYLE,
    SEE_NOTICE,
    add_notice,
    failure_text,
    figure,
    graph,
    graph_cells,
    kept_or_first,
    kpi,
    labelled,
    message_figure,
    notice_area,
)
from gits_common import errors
from gits_common.schemas import Task, UseCase

NAME = "gits_main"
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
                kpi("Production rows", "kpi-production"),
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
        dcc.Interval(id="refresh", interval=REFRESH_SECONDS * 1000),
    ],
    style=PAGE_STYLE,
)


@app.callback(
    Output("service", "options"),
    Output("service", "value"),
    Output("service-use-cases", "data"),
    Output("services-notice", "data"),
    Input("refresh", "n_intervals"),
    State("service", "value"),
)
def list_services(_n: int | None, current: str | None) -> tuple[Any, ...]:
    """The services to choose from, keeping the current choice."""
    try:
        found = data.services()
    except errors.GitsError as exc:
        return [], current, {}, [failure_text("The list of services (queue_manager)", exc)]
    names = [s.name for s in found]
    chosen = kept_or_first(current, names)
    return names, chosen, {s.name: s.use_case for s in found}, []


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
    """Jobs by status, throughput and processing time of the chosen service."""
    try:
        counts = data.job_counts(service)
        jobs = data.recent_jobs(service, window=JOB_WINDOW)
    except errors.GitsError as exc:
        titles = ("Jobs by status", "Throughput", "Processing time")
        blank = [message_figure(t, SEE_NOTICE) for t in titles]
        return (*blank, NO_VALUE, NO_VALUE, [failure_text("Jobs (queue_manager)", exc)])
    bucket = data.bucket_for(jobs["end"])
    return (
        status_figure(counts),
        throughput_figure(data.throughput(jobs, bucket=bucket), bucket),
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
    """The latest predictions, drawn as the use case's task needs, and the row counts of
    the chosen service's use case."""
    name = (use_cases or {}).get(service or "")
    if name is None:
        text = "No service to show: once one is bound in queue_manager it appears here."
        blank = graph_cells({"predictions": message_figure("Latest predictions", text)})
        return (blank, message_figure("Rows per table", text), NO_VALUE, "", [])
    try:
        definition = data.use_case(name)
        rows = data.production_rows(definition, last=data.MAX_PREDICTIONS)
        counts = data.row_counts(name)
    except errors.GitsError as exc:
        text = failure_text(f"Data of use case {name} (ml_data_api)", exc)
        blank = graph_cells({"predictions": message_figure("Latest predictions", SEE_NOTICE)})
        about = f"use case {name}"
        return (blank, message_figure("Rows per table", SEE_NOTICE), NO_VALUE, about, [text])
    production = f"{counts.get('production', 0):,}"
    about = f"use case {name} ({definition.task.value})"
    figures = task_figures_of(definition, rows)
    return graph_cells(figures), counts_figure(counts), production, about, []


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
    return {"predictions": predictions_figure(rows)}


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


def throughput_figure(rates: pd.DataFrame, bucket: str) -> go.Figure:
    """Jobs ended per second over time, one line per final status."""
    if rates.empty:
        return message_figure("Throughput", "No job has ended in the last 15 minutes.")
    fig = figure(f"Throughput (jobs/s, per {bucket})", yaxis_title="jobs per second")
    for status, part in rates.groupby("status"):
        fig.add_scatter(
            x=part["time"],
            y=part["per_second"],
            name=str(status),
            mode="lines+markers",
            line_color=STATUS_COLOURS.get(str(status)),
        )
    return fig


def processing_figure(timing: pd.DataFrame, bucket: str) -> go.Figure:
    """Seconds from a job's start to its end over time: mean and maximum."""
    if timing.empty:
        return message_figure("Processing time", "No job has ended in the last 15 minutes.")
    fig = figure(f"Processing time (s, per {bucket})", yaxis_title="seconds")
    fig.add_scatter(x=timing["time"], y=timing["mean"], name="mean", mode="lines+markers")
    fig.add_scatter(x=timing["time"], y=timing["max"], name="max", mode="lines", line_dash="dot")
    return fig


def predictions_figure(rows: pd.DataFrame) -> go.Figure:
    """The latest predictions against time, one line per model version, and the ground
    truth where it has arrived."""
    if rows.empty:
        return message_figure("Latest predictions", "No prediction stored yet.")
    fig = figure(f"Latest {len(rows):,} predictions and the ground truth")
    for version, part in rows.groupby(rows["model_version"].fillna("unknown model")):
        fig.add_scatter(
            x=part["time"], y=part["prediction"], name=f"prediction ({version})", mode="lines"
        )
    truth = rows.dropna(subset=["target"])
    fig.add_scatter(
        x=truth["time"],
        y=truth["target"],
        name=f"ground truth ({len(truth):,} arrived)",
        mode="markers",
        marker={"color": "#d64545", "size": 7},
    )
    return fig


def counts_figure(counts: dict[str, int]) -> go.Figure:
    """Rows per table of the use case."""
    fig = figure("Rows per table")
    tables = list(counts)
    fig.add_bar(x=tables, y=[counts[t] for t in tables], text=[f"{counts[t]:,}" for t in tables])
    return fig
