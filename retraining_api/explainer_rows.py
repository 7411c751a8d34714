"""The individual prediction and what-if tabs of a static explainer page, drawn for a few
rows that a selector switches between.

explainerdashboard's static export (`to_html`) draws a component in one state, without
the Dash server behind its index dropdown: unless it is given an index, its index card
reads "Selected index: None" and every plot of the row is empty; unless they are given
values, the what-if inputs are empty and the prediction reads "input data incorrect"
(oegedijk/explainerdashboard#265 reports this for `save_html`). So each tab is drawn
here once per row, for up to ROWS rows spread over the range of predictions, and a
`<select>` shows one row's drawing at a time. The what-if inputs show the row's values
and cannot be edited: a static page has no model to call."""

from __future__ import annotations

import html
import logging
import time
from typing import Any

import numpy as np
from explainerdashboard.dashboard_components import (
    IndividualPredictionsComposite,
    WhatIfComposite,
)
from explainerdashboard.explainers import BaseExplainer

log = logging.getLogger(__name__)

ROWS = 10  # rows each tab can switch to
SECONDS = 6.0  # for drawing them, of the page's 30 s: fewer rows for a slower model

# Shows the chosen row's drawing; plotly sizes a figure drawn while hidden on a resize.
SCRIPT = """<script>
document.querySelectorAll("select[data-gits-rows]").forEach(function (select) {
  select.addEventListener("change", function () {
    var box = document.getElementById(select.dataset.gitsRows);
    box.querySelectorAll(":scope > [data-gits-row]").forEach(function (row) {
      row.hidden = row.dataset.gitsRow !== select.value;
    });
    window.dispatchEvent(new Event("resize"));
  });
});
</script>"""


def row_tabs(explainer: BaseExplainer) -> dict[str, str]:
    """The "Individual Predictions" and "What if..." tabs ({title: HTML}), each with a
    row selector over the same rows, the first row shown. A classifier's rows are drawn
    for its current `pos_label`. The rows are as many of `spread_rows` as are drawn
    within SECONDS (at least one)."""
    chosen = spread_rows(explainer, ROWS)
    drawings: dict[str, list[tuple[str, str]]] = {"individual": [], "whatif": []}
    started, took = time.perf_counter(), 0.0
    for number, index in enumerate(_drawing_order(chosen)):
        begun = time.perf_counter()
        if number and begun - started + took > SECONDS:
            break
        name = f"r{number}"
        individual = IndividualPredictionsComposite(explainer, name=f"{name}i", index=index)
        drawings["individual"].append((index, _drawn(individual)))
        whatif = WhatIfComposite(explainer, name=f"{name}w", index=index)
        drawings["whatif"].append((index, _drawn(whatif, _inputs(explainer, whatif, index))))
        took = time.perf_counter() - begun
    order = {index: position for position, index in enumerate(chosen)}
    labels = {index: row_label(explainer, index) for index in chosen}
    tabs = {}
    for key, title in (("individual", "Individual Predictions"), ("whatif", "What if...")):
        drawn = sorted(drawings[key], key=lambda pair: order[pair[0]])
        tabs[title] = _selector(key, drawn, labels)
    log.info("drew %d of %d rows for the individual tabs", len(drawings["whatif"]), len(chosen))
    return tabs


def spread_rows(explainer: BaseExplainer, count: int) -> list[str]:
    """Up to `count` of the explained rows' indexes, evenly spread over the range of the
    model's predictions (a classifier's probability of its `pos_label`), lowest first."""
    predicted = _predictions(explainer)
    ranked = np.argsort(predicted, kind="stable")
    positions = np.unique(np.linspace(0, len(ranked) - 1, min(count, len(ranked))).round())
    indexes = explainer.idxs
    return [str(indexes[ranked[int(p)]]) for p in positions]


def row_label(explainer: BaseExplainer, index: str) -> str:
    """A row as the selector names it: its index, the prediction, the observed value."""
    position = explainer.idxs.get_loc(index)
    predicted = _predictions(explainer)[position]
    if explainer.is_classifier:
        text = f"{index}: P({explainer.labels[explainer.pos_label]}) {predicted:.2f}"
        if not explainer.y_missing:
            text += f", observed {explainer.labels[int(explainer.y.iloc[position])]}"
        return text
    text = f"{index}: predicted {predicted:.4g}"
    if not explainer.y_missing:
        text += f", observed {float(explainer.y.iloc[position]):.4g}"
    return text


def _predictions(explainer: BaseExplainer) -> np.ndarray:
    if explainer.is_classifier:
        return np.asarray(explainer.pred_probas(explainer.pos_label), dtype=float)
    return np.asarray(explainer.preds, dtype=float)


def _drawing_order(chosen: list[str]) -> list[str]:
    """Every other row first, then the rest: rows cut short still span the range."""
    return chosen[::2] + chosen[1::2]


def _inputs(explainer: BaseExplainer, whatif: Any, index: str) -> dict[tuple[str, str], Any]:
    """The what-if inputs' state: the row's own feature values."""
    row = explainer.get_X_row(index, merge=True).iloc[0]
    form = whatif.input
    return {
        (f"feature-input-{feature}-input-{form.name}", "value"): _plain(row[feature])
        for feature in form._input_features
    }


def _plain(value: Any) -> Any:
    """A value as an input shows it: numbers rounded to 4 significant digits."""
    if isinstance(value, float | np.floating):
        return float(f"{value:.4g}")
    return value.item() if isinstance(value, np.generic) else value


def _drawn(component: Any, state: dict[tuple[str, str], Any] | None = None) -> str:
    """A row's drawing, or why it is missing: one odd row must not cost the page."""
    try:
        return str(component.to_html(state, add_header=False))
    except Exception as exc:  # explainerdashboard's plots fail on some rows
        log.warning("row tab %r not drawn: %s", component.title, exc, exc_info=True)
        return f"<p>This row could not be drawn: {html.escape(str(exc))}</p>"


def _selector(key: str, drawn: list[tuple[str, str]], labels: dict[str, str]) -> str:
    """The drawings behind a labelled `<select>`, the first one shown."""
    box = f"gits-rows-{key}"
    options = "".join(
        f'<option value="{n}">{html.escape(labels[index])}</option>'
        for n, (index, _) in enumerate(drawn)
    )
    rows = "".join(
        f'<div data-gits-row="{n}"{" hidden" if n else ""}>{drawing}</div>'
        for n, (_, drawing) in enumerate(drawn)
    )
    count = len(drawn)
    note = (
        f"{count} rows, spread over the range of predictions, can be shown here."
        if count > 1
        else "One row can be shown here."
    )
    if key == "whatif":
        note += " A saved page has no model to call: the inputs show the row's values."
    return (
        f'<div class="mt-3"><label class="form-label" for="{box}-select">Row</label>'
        f'<select class="form-select" id="{box}-select" data-gits-rows="{box}">{options}'
        f'</select><div class="form-text">{html.escape(note)}</div></div>'
        f'<div id="{box}">{rows}</div>'
    )
