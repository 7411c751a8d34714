"""The monitoring dashboard: monitoring_api's history of one use case (the share of
drifted features, each feature's drift score, realised performance) and its alerts."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from django_plotly_dash import DjangoDash

from django_admin.dashboards import data
from django_admin.dashboards.dash_apps.common import (
    PAGE_STYLE,
    ROW_STYLE,
    SEE_NOTICE,
    add_notice,
    failure_text,
    figure,
    graph,
    kept_or_first,
    labelled,
    message_figure,
    notice_area,
)
from django_admin.dashboards.downsample import downsample
from gits_common import errors
from gits_common.monitoring import DRIFT_SCORE, DRIFT_SHARE

NAME = "gits_monitoring"
REFRESH_SECONDS = 10
WINDOWS = {"1 hour": timedelta(hours=1), "6 hours": timedelta(hours=6), "24 hours": timedelta(1)}
POINTS_PER_LINE = 1000
NO_HISTORY = (
    "No history point yet: monitoring_api records one every MONITORING_INTERVAL_SECONDS "
    "once MONITORING_MIN_WINDOW_ROWS production rows are there."
)
NO_PERFORMANCE = "No realised performance yet: it needs ground truth."
NOTICES = ["use-cases-notice", "history-notice"]
ALERT_COLUMNS = ("time", "metric", "feature", "value", "threshold", "delivery")

app = DjangoDash(NAME)
app.layout = html.Div(
    [
        html.Div(
            [
                labelled("Use case", dcc.Dropdown(id="use-case", clearable=False)),
                labelled(
                    "Window",
                    dcc.Dropdown(
                        id="window", options=list(WINDOWS), value="1 hour", clearable=False
                    ),
                    width="160px",
                ),
            ],
            style=ROW_STYLE,
        ),
        *notice_area(NOTICES),
        graph("drift-share", 320),
        graph("feature-drift", 420),
        graph("performance", 340),
        html.H3("Alerts", style={"margin": "12px 0 4px"}),
        html.Div(id="alerts"),
        dcc.Interval(id="refresh", interval=REFRESH_SECONDS * 1000),
    ],
    style=PAGE_STYLE,
)


@app.callback(
    Output("use-case", "options"),
    Output("use-case", "value"),
    Output("use-cases-notice", "data"),
    Input("refresh", "n_intervals"),
    State("use-case", "value"),
)
def list_use_cases(_n: int | None, current: str | None) -> tuple[Any, ...]:
    """The use cases to choose from, keeping the current choice."""
    try:
        names = data.use_case_names()
    except errors.GitsError as exc:
        return [], current, [failure_text("The list of use cases (ml_data_api)", exc)]
    return names, kept_or_first(current, names), []


@app.callback(
    Output("drift-share", "figure"),
    Output("feature-drift", "figure"),
    Output("performance", "figure"),
    Output("alerts", "children"),
    Output("history-notice", "data"),
    Input("refresh", "n_intervals"),
    Input("use-case", "value"),
    Input("window", "value"),
)
def show_history(_n: int | None, name: str | None, window_label: str) -> tuple[Any, ...]:
    """The chosen use case's drift, performance and alerts over the chosen window."""
    titles = ("Drift share", "Drift score per feature", "Realised performance")
    if not name:
        text = "No use case to show: once one is registered in ml_data_api it appears here."
        return (*(message_figure(t, text) for t in titles), "", [])
    window = WINDOWS.get(window_label, timedelta(hours=1))
    try:
        found = data.history(name, window=window)
        limit = data.drift_share_threshold(name)
        raised = data.alerts(name, window=window)
    except errors.GitsError as exc:
        blank = (message_figure(t, SEE_NOTICE) for t in titles)
        return (*blank, "", [failure_text(f"Monitoring of {name} (monitoring_api)", exc)])
    return (
        drift_share_figure(found, limit),
        feature_drift_figure(found),
        performance_figure(found),
        alerts_table(raised),
        [],
    )


def _empty(found: data.History, usual: str) -> str:
    """What a graph without values says: monitoring_api's reason when the whole history
    is empty, else the graph's usual sentence."""
    if found.values.empty and found.reason:
        # A plotly annotation does not wrap by itself.
        return "<br>".join(textwrap.wrap(f"No history point to show: {found.reason}.", 90))
    return usual


add_notice(app, NOTICES)


def drift_share_figure(found: data.History, limit: float | None) -> go.Figure:
    """The share of drifted features over time, with the alert threshold."""
    values = found.values
    share = values[values["metric"] == DRIFT_SHARE]
    if share.empty:
        return message_figure("Drift share", _empty(found, NO_HISTORY))
    share = downsample(share, x="time", y="value", points=POINTS_PER_LINE)
    fig = figure("Share of drifted features", yaxis={"range": [0, 1.05], "tickformat": ".0%"})
    fig.add_scatter(x=share["time"], y=share["value"], name="drift share", mode="lines+markers")
    if limit is not None:
        fig.add_hline(y=limit, line_dash="dash", line_color="#d64545", annotation_text="alert")
    return fig


def feature_drift_figure(found: data.History) -> go.Figure:
    """Each feature's drift score over time, as a heatmap (one row a feature), so it
    stays readable for hundreds of features."""
    values = found.values
    scores = values[values["metric"] == DRIFT_SCORE]
    if scores.empty:
        return message_figure("Drift score per feature", _empty(found, NO_HISTORY))
    grid = scores.pivot_table(index="feature", columns="time", values="value", aggfunc="last")
    grid = grid.iloc[:, -POINTS_PER_LINE:]
    fig = figure("Drift score per feature (0: as in training)")
    fig.add_heatmap(
        x=list(grid.columns),
        y=list(grid.index),
        z=grid.to_numpy(),
        colorscale="YlOrRd",
        zmin=0,
        colorbar={"title": "score"},
    )
    return fig


def performance_figure(found: data.History) -> go.Figure:
    """Realised performance metrics over time; the model's own on the reference dashed."""
    values = found.values
    use_case_wide = values[values["feature"].isna() & (values["metric"] != DRIFT_SHARE)]
    if use_case_wide.empty:
        return message_figure("Realised performance", _empty(found, NO_PERFORMANCE))
    fig = figure("Realised performance (on rows whose ground truth arrived)")
    for metric, part in use_case_wide.groupby("metric"):
        part = downsample(part, x="time", y="value", points=POINTS_PER_LINE)
        dash = "dash" if str(metric).startswith("reference_") else "solid"
        fig.add_scatter(
            x=part["time"], y=part["value"], name=str(metric), mode="lines", line_dash=dash
        )
    return fig


def alerts_table(raised: list[dict[str, Any]]) -> html.Div | html.Table:
    """The alerts, newest first, as a table."""
    if not raised:
        return html.Div("No alert in this window.", id="no-alerts")
    cell = {"padding": "4px 10px", "borderBottom": "1px solid #d9e2ec", "textAlign": "left"}
    head = html.Tr([html.Th(c, style=cell) for c in ALERT_COLUMNS])
    body = [html.Tr([html.Td(_cell(a, c), style=cell) for c in ALERT_COLUMNS]) for a in raised]
    return html.Table([html.Thead(head), html.Tbody(body)], style={"borderCollapse": "collapse"})


def _cell(alert: dict[str, Any], column: str) -> str:
    value = alert.get(column)
    if isinstance(value, float):
        return f"{value:.3g}"
    if column == "time" and value:
        return str(value)[:19].replace("T", " ")
    return "" if value is None else str(value)
