"""Feature contributions to an anomaly model's score, as a static page, for the two
models whose score splits exactly among the features:

- An isolation forest scores a row by how few random splits isolate it (pyod's score
  falls as the average path length through its trees grows), and shap's TreeExplainer
  splits that average path length exactly among the features (Lundberg et al. 2020,
  "From local explanations to global understanding with explainable AI for trees").
- A robust covariance model (pyod MCD, scikit-learn's MinCovDet) scores a row by its
  squared Mahalanobis distance d' P d (d: the row minus the robust mean, P: the inverse
  robust covariance), which is the sum over features i of d_i (P d)_i: each term is that
  feature's share, exact by construction.

Other pyod models (distances to neighbours, densities, histograms) have no such exact
method here and are refused by name."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from gits_common.schemas import UseCase
from gits_ml import modeling
from retraining_api.explainer import (
    ExplainerPage,
    Progress,
    _features,
    _ignore,
    _onehot_groups,
    _split,
    self_contained,
)

log = logging.getLogger(__name__)

TOP_ROWS = 20  # the most anomalous rows shown one by one


@dataclass(frozen=True)
class Attribution:
    """How a model's anomaly score splits among its features: `contributions(x)` of an
    encoded n x k array is n x k, each row adding up to what `unit` says."""

    method: str
    unit: str
    contributions: Callable[[np.ndarray], np.ndarray]


def _forest(detector: Any) -> Attribution:
    import shap

    explainer = shap.TreeExplainer(detector)
    return Attribution(
        method="tree SHAP (exact) of the isolation forest's average path length",
        unit="A contribution is how much a feature shortens the row's average isolation path "
        "through the forest, in tree depth: positive values make the row more anomalous; "
        "a row's contributions add up to the forest's mean path length minus the row's.",
        # negated: a shorter path is a more anomalous row
        contributions=lambda x: -np.asarray(explainer.shap_values(x), dtype=float),
    )


def _covariance(detector: Any) -> Attribution:
    location, precision = detector.location_, detector.precision_

    def contributions(x: np.ndarray) -> np.ndarray:
        offset = x - location
        return np.asarray(offset * (offset @ precision), dtype=float)

    return Attribution(
        method="the exact split of the squared Mahalanobis distance (robust covariance)",
        unit="A contribution is a feature's term d_i (P d)_i of the row's squared Mahalanobis "
        "distance from the robust mean (d: the row minus the mean, P: the inverse robust "
        "covariance): the contributions add up to the anomaly score; a negative one is a "
        "feature whose value fits the others better than the mean does.",
        contributions=contributions,
    )


def explainable(pipeline: Any) -> Attribution:
    """How the pipeline's anomaly score splits among its features: for a pyod IForest
    (its scikit-learn IsolationForest `detector_`) or a pyod MCD (its MinCovDet).
    Raises `ValueError` naming the model for any other anomaly model."""
    from sklearn.covariance import MinCovDet
    from sklearn.ensemble import IsolationForest

    estimator = modeling.final_estimator(pipeline)
    detector = getattr(estimator, "detector_", None)
    if isinstance(detector, IsolationForest):
        return _forest(detector)
    if isinstance(detector, MinCovDet):
        return _covariance(detector)
    kind = type(estimator)
    raise ValueError(
        f"the anomaly model {kind.__name__} ({kind.__module__}) cannot be explained: feature "
        "contributions to the anomaly score are available for isolation forests (PyCaret's "
        "'iforest', whose trees shap's TreeExplainer reads exactly) and robust covariance "
        "models ('mcd', whose Mahalanobis distance splits exactly); retrain with models "
        "['iforest'] or ['mcd'] to explain the use case"
    )


def build_page(
    pipeline: Any,
    frame: pd.DataFrame,
    *,
    use_case: UseCase,
    title: str,
    data_name: str,
    max_rows: int = 1000,
    seed: int = 7,
    progress: Progress | None = None,
) -> ExplainerPage:
    """A static page of what drives an isolation forest's anomaly scores on at most
    `max_rows` random rows of `frame` (the use case's features; its 0/1 target, where
    present, is shown beside each row): the mean size of each feature's contribution, the
    mean contribution among flagged and unflagged rows, and the `TOP_ROWS` most anomalous
    rows feature by feature. A contribution is in units of tree depth: how much the
    feature shortens the row's average isolation path (positive: more anomalous). Raises
    `ValueError` for a model other than an isolation forest (`explainable`)."""
    started, report = time.perf_counter(), progress or _ignore
    attribution = explainable(pipeline)
    report("sampling", 5)
    sample = frame.sample(n=min(max_rows, len(frame)), random_state=seed)
    report("computing contributions", 20)
    contributions = feature_contributions(pipeline, sample, use_case)
    scores = modeling.anomaly_scores(pipeline, sample[use_case.feature_names])
    threshold = modeling.anomaly_threshold(pipeline)
    flagged = scores > threshold if threshold is not None else np.zeros(len(scores), bool)
    report("rendering", 70)
    figures = [
        _importance(contributions),
        _by_flag(contributions, flagged),
        _top_rows(contributions, scores, sample, use_case),
    ]
    banner = _banner(
        title, data_name, len(sample), len(frame), seed, threshold, flagged, attribution
    )
    page = _page(title, banner, figures)
    seconds = time.perf_counter() - started
    report("done", 100)
    method = attribution.method
    log.info("explained %d rows for %s by %s in %.1f s", len(sample), title, method, seconds)
    return ExplainerPage(page, len(sample), len(frame), method, seconds)


def feature_contributions(pipeline: Any, frame: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """Each feature's contribution to each row's anomaly score (n rows x the use case's
    features; positive values make a row more anomalous), by the model's `Attribution`:
    for an isolation forest shap's exact tree SHAP values of its path length, negated (in
    tree depth; a row's values add up to the forest's expected path length minus the
    row's own); for a robust covariance model the terms of the squared Mahalanobis
    distance (a row's values add up to its anomaly score). Raises `ValueError` for
    another model."""
    attribution = explainable(pipeline)
    transform, _ = _split(pipeline)
    encoded = _features(transform, frame, use_case)
    # pyod fits its detector on an array: so is it asked, without column names.
    values = attribution.contributions(encoded.to_numpy(dtype=float))
    return _by_feature(pd.DataFrame(values, columns=encoded.columns), use_case)


def _by_feature(contributions: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """Contributions per use case feature: one-hot columns summed into their feature."""
    groups = _onehot_groups(contributions, use_case.feature_names)
    merged = {
        f: contributions[groups[f]].sum(axis=1) if f in groups else contributions[f]
        for f in use_case.feature_names
    }
    return pd.DataFrame(merged)


def _importance(contributions: pd.DataFrame) -> go.Figure:
    mean = contributions.abs().mean().sort_values()
    figure = go.Figure(go.Bar(x=mean.to_numpy(), y=mean.index, orientation="h"))
    return figure.update_layout(
        title="Mean |contribution| to the anomaly score, by feature (tree depth)",
        xaxis_title="mean |contribution| (tree depth)",
    )


def _by_flag(contributions: pd.DataFrame, flagged: np.ndarray) -> go.Figure:
    figure = go.Figure()
    for name, rows in (("flagged", flagged), ("not flagged", ~flagged)):
        if rows.any():
            mean = contributions[rows].mean()
            figure.add_bar(x=mean.index, y=mean.to_numpy(), name=f"{name} ({int(rows.sum())})")
    return figure.update_layout(
        title="Mean contribution of each feature, flagged and unflagged rows",
        yaxis_title="contribution (tree depth; > 0: more anomalous)",
        barmode="group",
    )


def _top_rows(
    contributions: pd.DataFrame, scores: np.ndarray, sample: pd.DataFrame, use_case: UseCase
) -> go.Figure:
    top = np.argsort(-scores)[:TOP_ROWS]
    names = (
        sample["message_id"].astype(str).to_numpy()
        if "message_id" in sample.columns
        else sample.index.astype(str).to_numpy()
    )
    target = use_case.target.name if use_case.target else None
    labels = [
        f"{names[i]} (score {scores[i]:.3g}"
        + (f", label {sample[target].iloc[i]}" if target in sample.columns else "")
        + ")"
        for i in top
    ]
    values = contributions.iloc[top].to_numpy()
    limit = float(np.abs(values).max()) or 1.0
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(contributions.columns),
            y=labels,
            colorscale="RdBu_r",
            zmin=-limit,
            zmax=limit,
            colorbar={"title": "tree depth"},
        )
    )
    return figure.update_layout(
        title=f"The {len(top)} most anomalous rows: each feature's contribution",
        yaxis={"autorange": "reversed"},
        height=200 + 25 * len(top),
    )


def _banner(
    title: str,
    data_name: str,
    explained: int,
    available: int,
    seed: int,
    threshold: float | None,
    flagged: np.ndarray,
    attribution: Attribution,
) -> str:
    cut = "no threshold" if threshold is None else f"threshold {threshold:.4g}"
    lines = [
        f"{explained} of {available} {data_name} rows, sampled at random (seed {seed}); "
        f"{attribution.method}.",
        f"{int(flagged.sum())} of them are flagged (anomaly score above the model's {cut}).",
        attribution.unit,
    ]
    text = "".join(f"<br>{html.escape(line)}" for line in lines)
    return (
        '<div class="alert alert-info mt-3" role="note" id="gits-explained">'
        f"<strong>{html.escape(title)}</strong>{text}</div>"
    )


def _page(title: str, banner: str, figures: list[go.Figure]) -> str:
    plots = "".join(
        f'<div class="card mt-3"><div class="card-body">'
        f"{figure.to_html(full_html=False, include_plotlyjs=False)}</div></div>"
        for figure in figures
    )
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body><div class="container">{banner}<h1>{html.escape(title)}</h1>{plots}'
        "</div></body></html>"
    )
    return self_contained(page)
