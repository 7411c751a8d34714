"""The monitoring dashboard: monitoring_api's history of one use case (the share of
drifted features, each feature's drift score, realised performance with one axis per
unit) and its alerts. Use case and window are kept in the page's URL
(?use_case=...&window=...); without them, the use case of the service with the newest
finished job is shown over the last hour."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update
from django_plotly_dash import DjangoDash

from django_admin.dashboards import data
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
    figure,
    graph,
    grow_with_subplots,
    keep_selection_in_url,
    labelled,
    message_figure,
    notice_area,
    selection_store,
    services_with_data_first,
    stacked_figure,
    url_store,
)
from django_admin.dashboards.downsample import downsample, gap_threshold, with_gaps
from gits_common import errors
from gits_common.monitoring import DRIFT_SCORE, DRIFT_SHARE

NAME = "gits_monitoring"
REFRESH_SECONDS = 10
WINDOWS = {"1 hour": timedelta(hours=1), "6 hours": timedelta(hours=6), "24 hours": timedelta(1)}
URL_FIELDS = (
    UrlField("use_case", "use-case"),
    UrlField("window", "window", choices=tuple(WINDOWS)),
)
POINTS_PER_LINE = 1000
NO_HISTORY = (
    "No history point yet: monitoring_api records one every MONITORING_INTERVAL_SECONDS "
    "once MONITORING_MIN_WINDOW_ROWS production rows are there."
)
NO_PERFORMANCE = "No realised performance yet: it needs ground truth."
NOTICES = ["use-cases-notice", "history-notice"]
ALERT_COLUMNS = ("time", "metric", "feature", "value", "threshold", "delivery")
HEADINGS = {"time": "time (UTC)"}

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
        selection_store(),
        dcc.Store(id="use-case-fallback"),
        url_store(),
        dcc.Interval(id="refresh", interval=REFRESH_SECONDS * 1000),
    ],
    style=PAGE_STYLE,
)


@app.callback(
    Output("use-case", "options"),
    Output("use-case-fallback", "data"),
    Output("use-cases-notice", "data"),
    Input("refresh", "n_intervals"),
    State("use-case", "value"),
    State("selection", "data"),
)
def list_use_cases(
    _n: int | None, current: str | None, wanted: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    """The use cases to choose from, and the choice for when the current one is gone or
    not made (no_update while it stands): the one the URL asks for, else the use case of
    the service with the newest finished job. The browser applies it."""
    try:
        names = data.use_case_names()
    except errors.GitsError as exc:
        return [], no_update, [failure_text("The list of use cases (ml_data_api)", exc)]
    if current in names:
        return names, no_update, []
    asked = (wanted or {}).get("use_case")
    messages: list[str] = []
    if asked not in names:
        ordered, messages = use_cases_with_data_first(names)
        asked = ordered[0] if ordered else None
    return names, fallback(asked, names), messages


def use_cases_with_data_first(names: list[str]) -> tuple[list[str], list[str]]:
    """`names` with the use cases of the services that have data first (the newest
    finished job's first), and the notice's messages when queue_manager cannot say."""
    try:
        found = data.services()
    except errors.GitsError as exc:
        return names, [failure_text("Which use cases have data (queue_manager)", exc)]
    of_service = {s.name: s.use_case for s in found}
    services, messages = services_with_data_first(list(of_service))
    active = [of_service[s] for s in services]
    return data.with_data_first(names, active), messages


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
keep_selection_in_url(app, URL_FIELDS)
fall_back_in_browser(app, "use-case", "use-case-fallback")
grow_with_subplots(app, "performance", base=140, per=200)


def drift_share_figure(found: data.History, limit: float | None) -> go.Figure:
    """The share of drifted features over time (UTC), with the alert threshold; the line
    breaks where history points stop for longer than `downsample.GAP_FACTOR` times
    their usual interval (monitoring_api was down, or too few rows came)."""
    values = found.values
    share = values[values["metric"] == DRIFT_SHARE]
    if share.empty:
        return message_figure("Drift share", _empty(found, NO_HISTORY))
    share = downsample(share, x="time", y="value", points=POINTS_PER_LINE, gaps=True)
    fig = figure(
        "Share of drifted features",
        xaxis={"title": TIME_AXIS},
        yaxis={"title": "drifted features (% of all)", "range": [0, 1.05], "tickformat": ".0%"},
    )
    fig.add_scatter(
        x=share["time"],
        y=share["value"],
        name="drift share",
        mode="lines+markers",
        connectgaps=False,
        hovertemplate=TIME_HOVER + "<br>%{y:.0%} of features drifted<extra></extra>",
    )
    if limit is not None:
        fig.add_hline(y=limit, line_dash="dash", line_color="#d64545", annotation_text="alert")
    return fig


def feature_drift_figure(found: data.History) -> go.Figure:
    """Each feature's drift score over time (UTC), as a heatmap (one row a feature), so
    it stays readable for hundreds of features; an empty column marks a gap in the
    history, where a cell would otherwise stretch over time nobody measured."""
    values = found.values
    scores = values[values["metric"] == DRIFT_SCORE]
    if scores.empty:
        return message_figure("Drift score per feature", _empty(found, NO_HISTORY))
    grid = scores.pivot_table(index="feature", columns="time", values="value", aggfunc="last")
    grid = grid.iloc[:, -POINTS_PER_LINE:]
    columns = grid.T.rename_axis("time").reset_index()
    broken = with_gaps(columns, x="time", threshold=gap_threshold(columns["time"]))
    grid = broken.set_index("time").T
    fig = figure(
        "Drift score per feature (0: as in training)",
        xaxis={"title": TIME_AXIS},
        yaxis={"title": "feature"},
    )
    fig.add_heatmap(
        x=list(grid.columns),
        y=list(grid.index),
        z=grid.to_numpy(dtype=float),
        colorscale="YlOrRd",
        zmin=0,
        colorbar={"title": "score"},
        hovertemplate=TIME_HOVER + "<br>%{y}: %{z:.3g}<extra></extra>",
    )
    return fig


TARGET_UNIT = "in the target's unit"
SHARE = "share (0-1)"
# The unit of each performance metric monitoring_api records (without its "reference_"
# or "estimated_" prefix); metrics of one unit share a y axis, and only they.
METRIC_UNITS = {
    "mae": TARGET_UNIT,
    "rmse": TARGET_UNIT,
    "r2": "R² (no unit, 1 is perfect)",
    "mape_percent": "percent",
    "accuracy": SHARE,
    "precision": SHARE,
    "recall": SHARE,
    "f1": SHARE,
    "anomaly_rate": SHARE,
}
PREFIXES = ("reference_", "estimated_")


def metric_unit(metric: str) -> str:
    """What a performance metric is measured in (`METRIC_UNITS`); an unknown metric is
    its own unit, so it never shares an axis with another."""
    base = metric
    for prefix in PREFIXES:
        base = base.removeprefix(prefix)
    return METRIC_UNITS.get(base, f"{base} (own unit)")


def performance_figure(found: data.History) -> go.Figure:
    """Realised performance metrics over time (UTC), one stacked subplot per unit
    (`metric_unit`: errors in the target's unit apart from 0-1 shares and R²); the
    model's own on the reference dashed, estimates dotted. Lines break at gaps in the
    history."""
    values = found.values
    use_case_wide = values[values["feature"].isna() & (values["metric"] != DRIFT_SHARE)]
    if use_case_wide.empty:
        return message_figure("Realised performance", _empty(found, NO_PERFORMANCE))
    units = sorted({metric_unit(str(m)) for m in use_case_wide["metric"]})
    fig = stacked_figure("Realised performance (on rows whose ground truth arrived)", len(units))
    for metric, part in use_case_wide.groupby("metric"):
        name = str(metric)
        row = units.index(metric_unit(name)) + 1
        part = downsample(part, x="time", y="value", points=POINTS_PER_LINE, gaps=True)
        dash = "dash" if name.startswith("reference_") else "solid"
        dash = "dot" if name.startswith("estimated_") else dash
        fig.add_scatter(
            x=part["time"], y=part["value"], name=name, mode="lines", line_dash=dash,
            connectgaps=False, hovertemplate=TIME_HOVER + "<br>%{y:.4g}<extra>" + name + "</extra>",
            row=row, col=1,
        )  # fmt: skip
        fig.update_yaxes(title_text=metric_unit(name), row=row, col=1)
    fig.update_xaxes(title_text=TIME_AXIS, row=len(units), col=1)
    return fig


def alerts_table(raised: list[dict[str, Any]]) -> html.Div | html.Table:
    """The alerts, newest first, as a table."""
    if not raised:
        return html.Div("No alert in this window.", id="no-alerts")
    cell = {"padding": "4px 10px", "borderBottom": "1px solid #d9e2ec", "textAlign": "left"}
    head = html.Tr([html.Th(HEADINGS.get(c, c), style=cell) for c in ALERT_COLUMNS])
    body = [html.Tr([html.Td(_cell(a, c), style=cell) for c in ALERT_COLUMNS]) for a in raised]
    return html.Table([html.Thead(head), html.Tbody(body)], style={"borderCollapse": "collapse"})


def _cell(alert: dict[str, Any], column: str) -> str:
    value = alert.get(column)
    if isinstance(value, float):
        return f"{value:.3g}"
    if column == "time" and value:
        return str(value)[:19].replace("T", " ")
    return "" if value is None else str(value)
