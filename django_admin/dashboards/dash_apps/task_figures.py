"""The figures of each task, shared by the main and the real-time dashboards: for a
classification use case the confusion matrix, the class balance and the distribution of
the predicted class's probability; for an anomaly use case the anomaly score over time
with the model's threshold and the flagged spans shaded, and the anomaly rate. Plain
functions over `data.production_rows`' frame; a graph without data says why in words."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from django_admin.dashboards import data
from django_admin.dashboards.dash_apps.common import TIME_HOVER, figure, message_figure
from django_admin.dashboards.downsample import downsample
from gits_common import errors

POINTS_PER_LINE = 1000
MAX_SPANS = 200  # newest flagged spans shaded; each is a shape the browser redraws
TIME_AXIS = "time (UTC)"
SPAN_COLOUR = "rgba(214, 69, 69, 0.18)"
THRESHOLD_COLOUR = "#d64545"

CONFUSION = "Confusion matrix"
BALANCE = "Class balance"
SCORES = "Probability of the predicted class"
ANOMALY_SCORE = "Anomaly score"
ANOMALY_RATE = "Anomaly rate"
NO_LABELLED = "No labelled prediction yet: the matrix needs rows whose ground truth arrived."
NO_PREDICTION = "No prediction stored yet."
NO_SCORE = "No prediction carries a score (prediction_score) yet."


# --- classification ---


def confusion_figure(rows: pd.DataFrame) -> go.Figure:
    """The realised confusion matrix as a heatmap: true class down, predicted class
    across, each cell the count of labelled rows (with its share of the true class)."""
    matrix = data.confusion_matrix(rows)
    if matrix.empty or int(matrix.to_numpy().sum()) == 0:
        return message_figure(CONFUSION, NO_LABELLED)
    counts = matrix.to_numpy()
    per_truth = counts.sum(axis=1, keepdims=True)
    shares = counts / per_truth.clip(min=1)
    labels = [str(c) for c in matrix.columns]
    fig = figure(
        f"{CONFUSION} ({int(counts.sum()):,} labelled predictions)",
        xaxis={"title": "predicted class", "type": "category"},
        yaxis={"title": "true class", "type": "category", "autorange": "reversed"},
    )
    fig.add_heatmap(
        x=labels,
        y=[str(c) for c in matrix.index],
        z=counts,
        text=[
            [f"{n:,}<br>{s:.0%}" for n, s in zip(r, sr, strict=True)]
            for r, sr in zip(counts, shares, strict=True)
        ],
        texttemplate="%{text}",
        hovertemplate="true %{y}, predicted %{x}: %{z:,} rows<extra></extra>",
        colorscale="Blues",
        colorbar={"title": "rows"},
        name="confusion matrix",
    )
    return fig


def class_balance_figure(rows: pd.DataFrame) -> go.Figure:
    """Each class's share of the predictions beside its share of the labelled truth, as
    grouped bars (a model that predicts the majority class too often shows here)."""
    balance = data.class_balance(rows)
    if balance.empty:
        return message_figure(BALANCE, NO_PREDICTION)
    fig = figure(
        BALANCE,
        barmode="group",
        xaxis={"title": "class", "type": "category"},
        yaxis={"title": "share of rows", "tickformat": ".0%", "range": [0, 1.05]},
        showlegend=True,
    )
    labels = [str(c) for c in balance.index]
    for column, name in (("predicted", "predicted"), ("truth", "labelled truth")):
        total = int(balance[column].sum())
        fig.add_bar(
            x=labels,
            y=balance[f"{column}_share"].fillna(0),
            name=f"{name} ({total:,} rows)",
            text=[f"{n:,}" for n in balance[column]],
            hovertemplate="%{x}: %{y:.1%} (%{text} rows)<extra>" + name + "</extra>",
        )
    return fig


def score_distribution_figure(rows: pd.DataFrame) -> go.Figure:
    """How sure the model is: a histogram of `prediction_score` (the probability of the
    predicted class, 0..1) in bins of 0.05, one per predicted class, overlaid."""
    scored = rows.dropna(subset=["prediction", "prediction_score"])
    if scored.empty:
        return message_figure(SCORES, NO_SCORE)
    fig = figure(
        SCORES,
        barmode="overlay",
        xaxis={"title": "probability of the predicted class", "range": [0, 1]},
        yaxis={"title": "predictions"},
        showlegend=True,
    )
    for label, part in scored.groupby(scored["prediction"].map(str), sort=True):
        fig.add_histogram(
            x=part["prediction_score"],
            name=f"predicted {label}",
            xbins={"start": 0.0, "end": 1.0, "size": 0.05},
            opacity=0.65,
        )
    return fig


# --- anomaly ---


def anomaly_score_figure(
    rows: pd.DataFrame, *, threshold: float | None, note: str | None
) -> go.Figure:
    """The anomaly score (`prediction_score`, in the model's units: higher is more
    anomalous) over time (UTC), downsampled to `POINTS_PER_LINE` and broken where the
    readings stop (`downsample.gap_threshold`); the model's threshold as a
    dashed horizontal line when known, else `note` (why not) above the graph; the spans
    of consecutive flagged rows shaded (the newest `MAX_SPANS`); and the rows the ground
    truth labels anomalous as markers."""
    scored = rows.dropna(subset=["prediction_score"])
    if scored.empty:
        return message_figure(ANOMALY_SCORE, NO_SCORE)
    spans = data.flagged_spans(rows).tail(MAX_SPANS)
    fig = figure(
        f"{ANOMALY_SCORE} and flagged spans ({len(spans):,} shaded)",
        xaxis={"title": TIME_AXIS},
        yaxis={"title": "anomaly score (the model's own scale; higher: more anomalous)"},
        showlegend=True,
    )
    line = downsample(scored, x="time", y="prediction_score", points=POINTS_PER_LINE, gaps=True)
    fig.add_scatter(
        x=line["time"],
        y=line["prediction_score"],
        name="anomaly score",
        mode="lines",
        connectgaps=False,
        hovertemplate=TIME_HOVER + "<br>score %{y:.4g}<extra></extra>",
    )
    fig.update_layout(shapes=span_shapes(spans))
    truth = scored[scored["target"].map(lambda v: v == data.ANOMALY_FLAG).astype(bool)]
    if not truth.empty:
        truth = truth.tail(POINTS_PER_LINE)
        fig.add_scatter(
            x=truth["time"],
            y=truth["prediction_score"],
            name=f"labelled anomaly ({len(truth):,})",
            mode="markers",
            marker={"color": "#1f2933", "size": 5, "symbol": "x"},
        )
    if threshold is not None:
        fig.add_hline(
            y=threshold,
            line_dash="dash",
            line_color=THRESHOLD_COLOUR,
            annotation_text=f"threshold {threshold:.3g}",
            name="threshold",
        )
    elif note:
        fig.add_annotation(
            text=note, showarrow=False, x=0, y=1.0, xref="paper", yref="paper",
            xanchor="left", yanchor="bottom", font={"size": 12, "color": "#8d2b0b"},
        )  # fmt: skip
    return fig


def span_shapes(spans: pd.DataFrame) -> list[dict[str, Any]]:
    """Each flagged span (`data.flagged_spans`) as a shaded rectangle over the plot's
    height. Given all at once: plotly's add_vrect re-checks every shape at each call,
    seconds for a few dozen spans, longer than the real-time view's refresh."""
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "y domain",
            "x0": span.start,
            "x1": span.end,
            "y0": 0,
            "y1": 1,
            "fillcolor": SPAN_COLOUR,
            "line": {"width": 0},
            "layer": "below",
        }
        for span in spans.itertuples()
    ]


def anomaly_rate_figure(rows: pd.DataFrame, *, alert_threshold: float | None) -> go.Figure:
    """The share of flagged rows per time bucket (`data.bucket_for` of the rows' span),
    with the rate at which the use case alerts as a dashed line when known."""
    bucket = data.bucket_for(rows["time"])
    rates = data.anomaly_rate(rows, bucket=bucket)
    if rates.empty:
        return message_figure(ANOMALY_RATE, NO_PREDICTION)
    flagged, total = int(rates["flagged"].sum()), int(rates["rows"].sum())
    fig = figure(
        f"{ANOMALY_RATE} per {bucket} ({flagged:,} of {total:,} rows flagged)",
        xaxis={"title": TIME_AXIS},
        yaxis={"title": "flagged share of rows", "tickformat": ".0%", "rangemode": "tozero"},
    )
    fig.add_bar(
        x=rates["time"],
        y=rates["rate"],
        name="anomaly rate",
        customdata=rates[["flagged", "rows"]],
        hovertemplate=TIME_HOVER
        + ": %{y:.1%} (%{customdata[0]} of %{customdata[1]})<extra></extra>",
        marker_color=THRESHOLD_COLOUR,
    )
    if alert_threshold is not None:
        fig.add_hline(
            y=alert_threshold, line_dash="dash", line_color="#52606d", annotation_text="alert"
        )
    return fig


def anomaly_figures(
    rows: pd.DataFrame, found: data.AnomalyReport | str | None
) -> dict[str, go.Figure]:
    """An anomaly use case's graphs by id: "anomaly-score" with the report's threshold
    (or the sentence why none) and the flagged spans, "anomaly-rate" with the report's
    alert threshold (`read_anomaly_report`'s answer; None: not read yet)."""
    threshold, note = threshold_of(found)
    report = found if isinstance(found, data.AnomalyReport) else None
    return {
        "anomaly-score": anomaly_score_figure(rows, threshold=threshold, note=note),
        "anomaly-rate": anomaly_rate_figure(
            rows, alert_threshold=report.alert_threshold if report else None
        ),
    }


# --- monitoring_api's anomaly report, or why there is none ---


def read_anomaly_report(
    name: str, *, start: datetime | None = None, last: int | None = None, bucket_seconds: int
) -> data.AnomalyReport | str:
    """monitoring_api's anomaly report (`data.anomaly_report`), or a sentence saying why
    the model's threshold cannot be drawn: never an HTTP status or an exception's text."""
    try:
        return data.anomaly_report(name, start=start, last=last, bucket_seconds=bucket_seconds)
    except errors.Unavailable:
        why = "monitoring_api does not answer right now; the line comes back by itself"
    except errors.NotFound:
        why = f"monitoring_api has no anomaly report of {name}"
    except errors.GitsError:
        why = f"monitoring_api could not report the anomalies of {name}"
    return f"No threshold line: {why}."


def threshold_of(found: data.AnomalyReport | str | None) -> tuple[float | None, str | None]:
    """The threshold to draw and, without one, the sentence that says why."""
    if found is None:
        return None, "No threshold line yet: the model's threshold is being read."
    if isinstance(found, str):
        return None, found
    if found.threshold is None:
        return None, "No threshold line: the model bound to this use case has no score threshold."
    return found.threshold, None


def report_summary(found: data.AnomalyReport | str | None) -> str:
    """One line of what monitoring_api says: threshold, window's rate and alert state."""
    threshold, note = threshold_of(found)
    if not isinstance(found, data.AnomalyReport):
        return note or ""
    parts = [f"model {found.model_version or 'unknown'}"]
    parts.append(note or f"score threshold {threshold:.4g}")
    if found.anomaly_rate is not None:
        parts.append(f"anomaly rate {found.anomaly_rate:.1%} in the window")
    if found.alert_threshold is not None:
        state = "ALERTING" if found.alerting else "not alerting"
        parts.append(f"alert above {found.alert_threshold:.1%}: {state}")
    return "; ".join(parts)


def to_store(found: data.AnomalyReport | str) -> dict[str, Any]:
    """A report (or its sentence) as JSON for a dcc.Store."""
    if isinstance(found, str):
        return {"note": found}
    return {"report": asdict(found)}


def from_store(stored: dict[str, Any] | None) -> data.AnomalyReport | str | None:
    """What `to_store` kept (None: nothing read yet)."""
    if not stored:
        return None
    if "report" in stored:
        return data.AnomalyReport(**stored["report"])
    return str(stored.get("note", ""))
