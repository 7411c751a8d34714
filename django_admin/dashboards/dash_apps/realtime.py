"""The real-time dashboard: the live stream of predictions of the chosen services, redrawn
every few seconds without a page reload. Each line is downsampled (LTTB) to a bounded
number of points, so a long window stays as smooth as a short one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from django_plotly_dash import DjangoDash

from django_admin.dashboards import data
from django_admin.dashboards.dash_apps.common import (
    PAGE_STYLE,
    ROW_STYLE,
    add_notice,
    failure_text,
    figure,
    graph,
    labelled,
    message_figure,
    notice_area,
)
from django_admin.dashboards.downsample import downsample
from gits_common import errors

NAME = "gits_realtime"
REFRESH_SECONDS = 3
SERVICES_REFRESH_SECONDS = 30
WINDOWS = {
    "5 minutes": timedelta(minutes=5),
    "30 minutes": timedelta(minutes=30),
    "2 hours": timedelta(hours=2),
}
POINTS_PER_LINE = 1000
DEFAULT_SERVICES = 3  # preselected when nothing is chosen yet
TITLE = "Live predictions"
NOTICES = ["services-notice", "stream-notice"]

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
        dcc.Store(id="service-use-cases"),
        dcc.Interval(id="refresh", interval=REFRESH_SECONDS * 1000),
        dcc.Interval(id="refresh-services", interval=SERVICES_REFRESH_SECONDS * 1000),
    ],
    style=PAGE_STYLE,
)


@app.callback(
    Output("services", "options"),
    Output("services", "value"),
    Output("service-use-cases", "data"),
    Output("services-notice", "data"),
    Input("refresh-services", "n_intervals"),
    State("services", "value"),
)
def list_services(_n: int | None, chosen: list[str] | None) -> tuple[Any, ...]:
    """The services to choose from; the first few are chosen until the user chooses."""
    try:
        found = data.services()
    except errors.GitsError as exc:
        return [], chosen, {}, [failure_text("The list of services (queue_manager)", exc)]
    names = [s.name for s in found]
    kept = [name for name in chosen or [] if name in names] or names[:DEFAULT_SERVICES]
    return names, kept, {s.name: s.use_case for s in found}, []


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
    streams, messages = {}, []
    for service in chosen:
        name = (use_cases or {})[service]
        try:
            streams[service] = FEED.rows(data.use_case(name), window=window)
        except errors.GitsError as exc:
            messages.append(failure_text(f"Predictions of {service} (ml_data_api)", exc))
    return live_figure(streams, window_label), summary(streams), messages


add_notice(app, NOTICES)


def live_figure(streams: dict[str, pd.DataFrame], window_label: str) -> go.Figure:
    """One line per service, each at most `POINTS_PER_LINE` points."""
    if not any(len(rows) for rows in streams.values()):
        return message_figure(TITLE, f"No prediction in the last {window_label}.")
    # The same uirevision keeps the user's zoom and hidden lines across refreshes.
    fig = figure(f"{TITLE}, last {window_label}", uirevision=window_label, showlegend=True)
    for service, rows in streams.items():
        drawn = downsample(rows, x="time", y="prediction", points=POINTS_PER_LINE)
        fig.add_scatter(
            x=drawn["time"],
            y=drawn["prediction"],
            name=service,
            mode="lines",
            customdata=drawn["model_version"],
            hovertemplate="%{x}<br>%{y}<br>model %{customdata}<extra>" + service + "</extra>",
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
