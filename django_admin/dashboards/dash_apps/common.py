"""Pieces every dashboard shares: layout blocks, figure defaults, how a failing API is
shown (a sentence in the dashboard, never a stack trace or a blank graph), and how a
dashboard's selection lives in its page's URL (so a reload or a shared link shows the
same)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from django_plotly_dash import DjangoDash
from plotly.subplots import make_subplots

from django_admin.dashboards import data
from gits_common import errors
from gits_common.registry import NAME_PATTERN
from gits_common.schemas import UseCase

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
# Every time the dashboards draw is in UTC (stored so, and plotly shows it as given).
TIME_AXIS = "time (UTC)"
TIME_HOVER = "%{x|%Y-%m-%d %H:%M:%S} UTC"
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
    fig.update_layout(**_look(title), **layout)
    return fig


def stacked_figure(title: str, rows: int) -> go.Figure:
    """A figure of `rows` subplots stacked on one shared time axis, with the dashboards'
    common look: for values in different units, each with its own y axis."""
    # make_subplots refuses a spacing above 1 / (rows - 1).
    spacing = min(0.08, 0.5 / max(rows, 1))
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=spacing)
    # Set, not copied from `figure`'s layout: copying a template costs a second or more.
    fig.update_layout(**_look(title))
    return fig


def _look(title: str) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01},
        "template": "plotly_white",
        "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "font": {"family": FONT},
    }


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


def target_title(definition: UseCase) -> str:
    """A value axis of a use case's target (a regression's predictions): the target's
    name and its unit. No use case declares a unit (its schema has no such field), so
    the title says so rather than guess one."""
    target = definition.target.name if definition.target else "prediction"
    return f"{target} (unit not declared)"


# --- The selection in the page's URL ---

SELECTION = "selection"  # the store of what the URL asked for, read once options are in
MAX_QUERY_VALUES = 20


@dataclass(frozen=True)
class UrlField:
    """A part of a dashboard's selection kept in its page's query string: the key, the
    component whose `value` it is, whether it holds several values, and its allowed
    values when fixed (`choices`: the URL sets the component's value directly); without
    `choices` the options come from an API, so the wanted value waits in the
    `SELECTION` store until they are in, and it must look like a name (NAME_PATTERN)."""

    key: str
    component: str
    many: bool = False
    choices: tuple[str, ...] | None = None

    def accepts(self, value: str) -> bool:
        """Whether a query value may stand for this field."""
        if self.choices is not None:
            return value in self.choices
        return bool(re.fullmatch(NAME_PATTERN, value))


def initial_arguments(
    fields: Sequence[UrlField], query: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """django-plotly-dash's initial arguments ({component id: {prop: value}}) for the
    selection `query` (a query string's values per key) asks for: fixed-choice fields
    as their component's value, the others in the `SELECTION` store's data. Unknown
    keys and values a field does not accept are ignored; a field holding several values
    keeps the first `MAX_QUERY_VALUES`, a single one the first value."""
    wanted: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for field in fields:
        values = [v for v in query.get(field.key, []) if field.accepts(v)]
        if not values:
            continue
        value: Any = values[:MAX_QUERY_VALUES] if field.many else values[0]
        if field.choices is not None:
            out[field.component] = {"value": value}
        else:
            wanted[field.key] = value
    out[SELECTION] = {"data": wanted}
    return out


def selection_store() -> dcc.Store:
    """The store of what the URL asked for (set by the page's initial arguments)."""
    return dcc.Store(id=SELECTION, data={})


# Writes the selection into the parent page's URL (the app runs in a same-origin frame),
# replacing the history entry: a reload or a copied link then shows the same selection.
_URL_SYNC_JS = """function(...values) {
    const keys = KEYS;
    const params = new URLSearchParams();
    keys.forEach((key, i) => {
        const value = values[i];
        if (Array.isArray(value)) { value.forEach(v => params.append(key, v)); }
        else if (value !== null && value !== undefined && value !== '') {
            params.set(key, value);
        }
    });
    try {
        const page = window.parent;
        const query = params.toString();
        const url = page.location.pathname + (query ? '?' + query : '') + page.location.hash;
        if (url !== page.location.pathname + page.location.search + page.location.hash) {
            page.history.replaceState(page.history.state, '', url);
        }
    } catch (e) { /* not framed by our own page: nothing to keep */ }
    return window.dash_clientside.no_update;
}"""


# Sets a dropdown's value to the server's fallback only when the value the browser holds
# now is not among the options: a server callback's choice, made from the value as it was
# when the request left, would otherwise undo a choice the user made meanwhile.
_FALL_BACK_JS = """function(fallback, options, current) {
    const none = window.dash_clientside.no_update;
    const names = (options || []).map(o => (o !== null && typeof o === 'object') ? o.value : o);
    if (!names.length) { return none; }
    if (Array.isArray(current) || Array.isArray(fallback)) {
        const now = Array.isArray(current) ? current : [];
        const kept = now.filter(v => names.includes(v));
        if (kept.length && kept.length === now.length) { return none; }
        if (kept.length) { return kept; }
        return Array.isArray(fallback) ? fallback : none;
    }
    if (current !== null && current !== undefined && names.includes(current)) { return none; }
    return (fallback === null || fallback === undefined) ? none : fallback;
}"""


def fall_back_in_browser(app: DjangoDash, component: str, store: str) -> None:
    """Give the dropdown `component` the value in the store `store` (the server's
    fallback: the URL's choice, else one with data) whenever its options change and the
    value it holds in the browser is not among them (kept as it is otherwise, and while
    there are no options); a multi-value dropdown keeps those of its values still there."""
    app.clientside_callback(
        _FALL_BACK_JS,
        Output(component, "value"),
        Input(store, "data"),
        Input(component, "options"),
        State(component, "value"),
    )


def keep_selection_in_url(app: DjangoDash, fields: Sequence[UrlField]) -> None:
    """Whenever a field's component changes, write the whole selection into the page's
    query string (in the browser; a store named "url-kept" is the callback's output)."""
    app.clientside_callback(
        _URL_SYNC_JS.replace("KEYS", json.dumps([f.key for f in fields])),
        Output("url-kept", "data"),
        *(Input(f.component, "value") for f in fields),
        # Not on load: the layout's empty values would wipe the URL's before the
        # options (and the URL's choice among them) are in.
        prevent_initial_call=True,
    )


def url_store() -> dcc.Store:
    """The output `keep_selection_in_url` needs."""
    return dcc.Store(id="url-kept")


def fallback(wanted: str | None, names: list[str]) -> str | None:
    """The choice when the current one is gone or not made: the one the URL asked for if
    it exists, else the first name (the caller puts names with data first; None if none)."""
    if wanted in names:
        return wanted
    return names[0] if names else None


def services_with_data_first(names: list[str]) -> tuple[list[str], list[str]]:
    """`names` with the services that have data first (`data.with_data_first`: the one
    with the newest finished job leads), and the notice's message when queue_manager
    cannot say which (the names then stay in their order)."""
    try:
        active = data.active_services()
    except errors.GitsError as exc:
        return names, [failure_text("Which services have data (queue_manager)", exc)]
    return data.with_data_first(names, active), []


def grow_with_subplots(app: DjangoDash, graph_id: str, *, base: int, per: int) -> None:
    """Size the graph `graph_id` in the browser as its figure asks: `base` pixels plus
    `per` for each of its y axes (one per stacked subplot)."""
    app.clientside_callback(
        """function(fig) {
            const layout = (fig && fig.layout) || {};
            const axes = Object.keys(layout).filter(key => key.startsWith('yaxis')).length;
            return {height: (BASE + PER * Math.max(axes, 1)) + 'px'};
        }""".replace("BASE", str(base)).replace("PER", str(per)),
        Output(graph_id, "style"),
        Input(graph_id, "figure"),
    )
