"""Pieces every dashboard shares: layout blocks, figure defaults, and how a failing API
is shown (a sentence in the dashboard, never a stack trace or a blank graph)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from django_plotly_dash import DjangoDash

from gits_common import errors

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
PAGE_STYLE = {"fontFamily": FONT, "margin": "0 8px", "color": "#1f2933"}
ROW_STYLE = {"display": "flex", "flexWrap": "wrap", "gap": "12px", "alignItems": "flex-end"}
CELL_STYLE = {"flex": "1 1 480px", "minWidth": "320px"}
NOTICE_STYLE = {
    "background": "#fff4e5",
    "border": "1px solid #f0b429",
    "borderRadius": "4px",
    "padding": "8px 12px",
    "margin": "8px 0",
}
NO_VALUE = "-"  # a number that cannot be known right now
KPI_STYLE = {
    "flex": "1 1 160px",
    "border": "1px solid #d9e2ec",
    "borderRadius": "4px",
    "padding": "8px 12px",
}


def failure_text(what: str, exc: errors.GitsError) -> str:
    """A sentence for the dashboard: what cannot be shown, and why."""
    if isinstance(exc, errors.Unavailable):
        return f"{what} cannot be shown right now: {exc.detail}. It will come back by itself."
    return f"{what} cannot be shown: {exc.detail}"


SEE_NOTICE = "Not available right now: see the message above."


def notice_area(sources: list[str]) -> list[Any]:
    """The notice shown above the graphs, and one store per callback that feeds it."""
    return [html.Div(id="notice", style={"display": "none"})] + [dcc.Store(id=s) for s in sources]


def add_notice(app: DjangoDash, sources: list[str]) -> None:
    """Show every message the `sources` stores hold in the notice, or hide it."""

    @app.callback(
        Output("notice", "children"),
        Output("notice", "style"),
        *(Input(source, "data") for source in sources),
    )
    def show_notice(*parts: list[str] | None) -> tuple[list[html.P], dict[str, str]]:
        messages = [text for part in parts for text in (part or [])]
        style = NOTICE_STYLE if messages else {"display": "none"}
        return [html.P(text, style={"margin": "2px 0"}) for text in messages], style


def figure(title: str, **layout: Any) -> go.Figure:
    """An empty figure with the dashboards' common look."""
    fig = go.Figure()
    fig.update_layout(
        title={"text": title, "x": 0.01},
        template="plotly_white",
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        font={"family": FONT},
        **layout,
    )
    return fig


def message_figure(title: str, text: str) -> go.Figure:
    """A figure that says why it has no data, in its middle."""
    fig = figure(title)
    fig.add_annotation(
        text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 14}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def graph(graph_id: str, height: int = 360, shown: go.Figure | None = None) -> dcc.Graph:
    """A graph block of the given height, showing `shown` (else "Loading...")."""
    return dcc.Graph(
        id=graph_id,
        config={"displaylogo": False},
        style={"height": f"{height}px"},
        figure=shown if shown is not None else message_figure("", "Loading..."),
    )


def graph_cells(
    figures: dict[str, go.Figure], height: int = 420, style: dict[str, str] | None = None
) -> list[html.Div]:
    """Each figure in a graph of its id (a fresh one, which also draws in a part of the
    page that was hidden when it loaded), each in a cell of `style` (side by side where
    the page is wide enough, by default)."""
    return [
        html.Div(graph(graph_id, height, shown), style=style or CELL_STYLE)
        for graph_id, shown in figures.items()
    ]


def labelled(label: str, control: Any, width: str = "320px") -> html.Div:
    """A form control with its label above it."""
    return html.Div(
        [html.Label(label, style={"fontWeight": 600, "display": "block"}), control],
        style={"width": width},
    )


def kpi(label: str, value_id: str) -> html.Div:
    """A labelled number."""
    return html.Div(
        [
            html.Div(label, style={"fontSize": "13px", "color": "#52606d"}),
            html.Div(NO_VALUE, id=value_id, style={"fontSize": "26px", "fontWeight": 600}),
        ],
        style=KPI_STYLE,
    )


def kept_or_first(current: str | None, names: list[str]) -> str | None:
    """The current choice while it still exists, else the first name (None if none)."""
    if current in names:
        return current
    return names[0] if names else None
