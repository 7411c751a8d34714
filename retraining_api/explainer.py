"""A static-HTML explainerdashboard for any PyCaret regression or classification model,
built in seconds: the SHAP method and the number of explained rows follow the model
(kernel SHAP, for models without a faster method, is retraining_api.explainer_kernel).
A classifier's importances and statistics are drawn once for each class; the individual
prediction and what-if tabs once for each of a few rows, which a selector switches
between (retraining_api.explainer_rows). Anomaly models get a page of feature
contributions to their score (retraining_api.anomaly_explainer)."""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import explainerdashboard
import numpy as np
import pandas as pd
import plotly
from explainerdashboard import ClassifierExplainer, RegressionExplainer, to_html
from explainerdashboard.dashboard_components import (
    ClassifierModelStatsComposite,
    ImportancesComposite,
    RegressionModelStatsComposite,
    ShapDependenceComposite,
)
from explainerdashboard.explainer_methods import guess_shap
from explainerdashboard.explainers import BaseExplainer

from gits_common.schemas import Task, UseCase
from retraining_api import explainer_kernel, explainer_rows
from retraining_api.explainer_kernel import KernelSize, KernelValues

log = logging.getLogger(__name__)

# The page's CDN tags (plotly.js, Bootstrap, Popper) and the same files from the
# installed packages, so that a page needs no network.
CDN_TAG = re.compile(
    r'<(?:script[^>]*src|link[^>]*href)="https://cdn\.(?:plot\.ly|jsdelivr\.net)/[^"]*"[^>]*>'
    r"(?:</script>)?"
)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
BOOTSTRAP_CSS = Path(explainerdashboard.__file__).parent / "static" / "bootstrap.min.css"
BOOTSTRAP_JS = Path(explainerdashboard.__file__).parent / "static" / "bootstrap.min.js"

Progress = Callable[[str, int], None]

# Their own C++ tree SHAP is exact and fast; shap refuses `approximate` for them.
NATIVE_BOOSTERS = ("LGBMRegressor", "LGBMClassifier", "CatBoostRegressor", "CatBoostClassifier")
# Boosted classifiers' trees add up log-odds; explaining probabilities instead needs a
# background set and costs 40 s for 1,000 rows.
LOGODDS_CLASSIFIERS = (
    "LGBMClassifier",
    "CatBoostClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "XGBClassifier",
)
# Kernel SHAP sizes, most thorough first: the first that explains KERNEL_MIN_ROWS rows
# within KERNEL_SECONDS is used; the last one otherwise, on as many rows as fit.
KERNEL_SIZES = (
    KernelSize(background=10, coalitions=100),
    KernelSize(background=5, coalitions=100),
    KernelSize(background=3, coalitions=60),
    KernelSize(background=2, coalitions=50),
    KernelSize(background=1, coalitions=36),
)
KERNEL_SECONDS = 15.0  # its share of the 30 s goal; drawing rows one by one takes 6 s more
KERNEL_MIN_ROWS = 200
KERNEL_PROBE_ROWS = 200  # the model is timed on this many rows
KERNEL_MARGIN = 1.5  # models are slower per row on kernel SHAP's large batches
PDP_ROWS = 1000  # a partial dependence plot calls the model on about this many rows
# A model this slow per call (sklearn's Gaussian process classifier on thousands of
# rows: 2 s) leaves out the tabs that call it again and again (a PDP plot: 11 calls).
SLOW_CALL_SECONDS = 0.5


@dataclass(frozen=True)
class ExplainerPage:
    """A rendered dashboard and what it explains."""

    html: str  # a complete static HTML page
    rows_explained: int
    rows_available: int
    shap: str  # the SHAP method, for people
    seconds: float


@dataclass(frozen=True)
class ShapPlan:
    """How one estimator's SHAP values are computed, and how the page names that."""

    method: str  # explainerdashboard's `shap` argument
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)  # for shap's shap_values()
    background: pd.DataFrame | None = None  # kernel SHAP's k-means centres
    model_output: str | None = None  # None: explainerdashboard's default
    call_seconds: float = 0.0  # one call of the model on PDP_ROWS rows, when measured

    @property
    def slow_model(self) -> bool:
        """Whether the model is too slow for the tabs that call it many times."""
        return self.call_seconds > SLOW_CALL_SECONDS


def build_dashboard(
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
    """A static explainerdashboard of `pipeline` on at most `max_rows` random rows of
    `frame` (the use case's features, and its target where known). Raises `ValueError`
    for rows lacking features, no rows, or an anomaly model other than an isolation
    forest or a robust covariance model (the sentence names the model)."""
    started = time.perf_counter()
    report = progress or _ignore
    _check_supported(use_case, frame)
    if use_case.task is Task.anomaly:
        # Imported here: that module builds on this one's page helpers.
        from retraining_api import anomaly_explainer

        return anomaly_explainer.build_page(
            pipeline,
            frame,
            use_case=use_case,
            title=title,
            data_name=data_name,
            max_rows=max_rows,
            seed=seed,
            progress=progress,
        )
    report("sampling", 5)
    labelled = _has_labels(frame, use_case)
    sample = frame.sample(n=min(max_rows, len(frame)), random_state=seed)
    report("computing SHAP", 20)
    explainer, plan = _explain(pipeline, sample, use_case, labelled, seed)
    report("rendering", 70)
    explained = len(explainer.X)
    banner = _banner(title, data_name, explained, len(frame), seed, plan, labelled)
    page = _render(explainer, title, banner, slow_model=plan.slow_model)
    seconds = time.perf_counter() - started
    report("done", 100)
    log.info(
        "explained %d rows for %s by %s in %.1f s", explained, title, plan.description, seconds
    )
    return ExplainerPage(page, explained, len(frame), plan.description, seconds)


def plan_shap(estimator: Any, *, is_classifier: bool) -> ShapPlan:
    """The fastest SHAP method that suits the estimator."""
    name = type(estimator).__name__
    logodds = is_classifier and name in LOGODDS_CLASSIFIERS
    output = "logodds" if logodds else None
    if name in NATIVE_BOOSTERS:
        return ShapPlan("tree", _scale("tree SHAP", is_classifier, logodds), model_output=output)
    if guess_shap(estimator) == "tree":
        # Exact tree SHAP on deep forests takes minutes; Saabas' approximation, seconds.
        kwargs = {"approximate": True, "check_additivity": False}
        description = _scale("tree SHAP (approximate)", is_classifier, logodds)
        return ShapPlan("tree", description, kwargs, model_output=output)
    if _is_linear(estimator):
        # explainerdashboard explains linear classifiers in log-odds only.
        return ShapPlan("linear", _scale("linear SHAP", is_classifier, logodds=True))
    return ShapPlan("kernel", "kernel SHAP")  # sized by _kernel_plan, for the model's speed


def _scale(description: str, is_classifier: bool, logodds: bool) -> str:
    """The description, and for a classifier the scale its SHAP values are on."""
    if not is_classifier:
        return description
    return f"{description}, in {'log-odds' if logodds else 'probability'}"


def _ignore(stage: str, percent: int) -> None:
    """No progress reporting."""


def _check_supported(use_case: UseCase, frame: pd.DataFrame) -> None:
    """Refuse, with the reason, what no dashboard can be built for."""
    missing = [f for f in use_case.feature_names if f not in frame.columns]
    if missing:
        raise ValueError(f"the rows lack the feature columns {missing}")
    if frame.empty:
        raise ValueError("there are no rows to explain")


def _has_labels(frame: pd.DataFrame, use_case: UseCase) -> bool:
    """Whether every row carries the target: only then can the explainer score the model."""
    target = use_case.target.name if use_case.target else None
    return target in frame.columns and bool(frame[target].notna().all())


def _explain(
    pipeline: Any, sample: pd.DataFrame, use_case: UseCase, labelled: bool, seed: int
) -> tuple[BaseExplainer, ShapPlan]:
    """An explainer with its SHAP values computed, by the fastest method that works."""
    transform, estimator = _split(pipeline)
    is_classifier = use_case.task is Task.classification
    plan = plan_shap(estimator, is_classifier=is_classifier)
    if plan.method != "kernel":
        try:
            explainer = _explainer(transform, estimator, sample, use_case, plan, labelled, seed)
            explainer.get_shap_values_df()
            return explainer, plan
        except Exception:  # shap rejects some models its type check let through
            name = type(estimator).__name__
            log.warning("%s failed for %s, using kernel SHAP", plan.description, name)
    features = _features(transform, sample, use_case)
    plan, values = _kernel_shap(features, estimator, is_classifier=is_classifier, seed=seed)
    rows = len(values.values)
    explainer = _explainer(transform, estimator, sample.iloc[:rows], use_case, plan, labelled, seed)
    _set_shap_values(explainer, values)
    return explainer, plan


def _split(pipeline: Any) -> tuple[Any, Any]:
    """The pipeline's transforming steps, and its final estimator."""
    steps = getattr(pipeline, "steps", None)
    if not steps:
        return None, pipeline
    if len(steps) == 1:  # nothing to transform: an empty Pipeline has no `transform`
        return None, steps[-1][1]
    return pipeline[:-1], steps[-1][1]


def _is_linear(estimator: Any) -> bool:
    # Models with a linear decision function expose these two, whatever their class.
    return hasattr(estimator, "coef_") and hasattr(estimator, "intercept_")


def _explainer(
    transform: Any,
    estimator: Any,
    sample: pd.DataFrame,
    use_case: UseCase,
    plan: ShapPlan,
    labelled: bool,
    seed: int,
) -> BaseExplainer:
    """The explainer of the final estimator on the sample's transformed features."""
    features, y = _transformed(transform, sample, use_case, labelled)
    options: dict[str, Any] = {
        "shap": plan.method,
        "X_background": plan.background,
        "shap_kwargs": plan.kwargs,
        "cats": _onehot_groups(features, use_case.feature_names) or None,
        "target": use_case.target.name if use_case.target else None,
        "idxs": _row_names(sample),
    }
    if plan.model_output is not None:
        options["model_output"] = plan.model_output
    if use_case.task is Task.classification:
        labels = _labels(transform, estimator)
        explainer = ClassifierExplainer(estimator, features, y, labels=labels, **options)
        # explainerdashboard 0.5 scores every cutoff from 0.01 to 0.99 for each class, for
        # its live cutoff slider (5 s a class); a static page shows one cutoff, scored on
        # demand when this cache of theirs is empty.
        explainer._metrics = {label: {} for label in range(len(labels))}
        return explainer
    return RegressionExplainer(estimator, features, y, **options)


def _kernel_shap(
    features: pd.DataFrame, estimator: Any, *, is_classifier: bool, seed: int
) -> tuple[ShapPlan, KernelValues]:
    """Kernel SHAP values of as many rows as its time budget allows (`_kernel_size`), and
    the plan that names how they were computed."""
    deadline = time.perf_counter() + KERNEL_SECONDS
    predict = estimator.predict_proba if is_classifier else estimator.predict
    per_row = explainer_kernel.seconds_per_row(predict, features.iloc[:KERNEL_PROBE_ROWS])
    size, rows = _kernel_size(per_row, features)
    log.info("kernel SHAP at %s: about %d rows fit (%.2g s a model row)", size, rows, per_row)
    background, weights = explainer_kernel.summarise(features, size.background)
    values = explainer_kernel.shap_values(
        predict,
        features,
        background,
        weights,
        coalitions=size.coalitions,
        seed=seed,
        deadline=deadline,
        min_rows=min(rows, KERNEL_MIN_ROWS),  # the estimate is rough: past the deadline
    )
    description = _scale(size.describe(features.shape[1]), is_classifier, logodds=False)
    # For explainerdashboard's own kernel SHAP of rows it has not seen (the what-if tab).
    # l1_reg=0: every feature gets its share; shap's default keeps the 10 largest.
    kwargs = {"nsamples": size.coalitions, "l1_reg": 0, "silent": True}
    call = per_row * PDP_ROWS
    return ShapPlan("kernel", description, kwargs, background, call_seconds=call), values


def _kernel_size(per_row: float, features: pd.DataFrame) -> tuple[KernelSize, int]:
    """The most thorough kernel SHAP size that explains KERNEL_MIN_ROWS rows within
    KERNEL_SECONDS at `per_row` seconds a model row, and about how many rows fit there."""
    for wanted in KERNEL_SIZES:
        size = wanted.for_features(features.shape[1])
        seconds = size.background * size.coalitions * per_row * KERNEL_MARGIN
        rows = min(len(features), max(1, int(KERNEL_SECONDS / (seconds or 1e-9))))
        if rows >= min(KERNEL_MIN_ROWS, len(features)):
            break
    return size, rows


def _set_shap_values(explainer: BaseExplainer, values: KernelValues) -> None:
    """Hand the SHAP values (one array per class) and the model's outputs computed here to
    the explainer: a slow model is not called again for them."""
    precision = explainer.precision
    if explainer.is_classifier:
        per_class = [values.values[:, :, c] for c in range(values.values.shape[2])]
        explainer.set_shap_values(list(values.base), per_class)
        # explainerdashboard 0.5 caches a classifier's probabilities here.
        explainer._pred_probas = values.outputs.astype(precision)
    else:
        explainer.set_shap_values(float(values.base[0]), values.values[:, :, 0])
        explainer._preds = values.outputs[:, 0].astype(precision)  # its cache of predict()


def _features(transform: Any, sample: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """The rows as the final estimator sees them."""
    raw = sample[use_case.feature_names]
    return raw if transform is None else transform.transform(raw)


def _transformed(
    transform: Any, sample: pd.DataFrame, use_case: UseCase, labelled: bool
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Features and, if the rows are labelled, the target, as the final estimator sees them."""
    if not labelled or use_case.target is None:
        return _features(transform, sample, use_case), None
    raw, target = sample[use_case.feature_names], sample[use_case.target.name]
    if transform is None:
        return raw, target
    # PyCaret's pipeline encodes class labels as the estimator's integers.
    features, y = transform.transform(raw, target)
    return features, pd.Series(np.asarray(y), index=features.index, name=target.name)


def _labels(transform: Any, estimator: Any) -> list[str]:
    """The class names, in the order of the estimator's encoded classes."""
    classes = list(getattr(estimator, "classes_", []))
    encoder = dict(getattr(transform, "steps", [])).get("label_encoding")
    if encoder is None:
        return [str(c) for c in classes]
    return [str(c) for c in encoder.inverse_transform(pd.Series(classes))]


def _onehot_groups(encoded: pd.DataFrame, features: list[str]) -> dict[str, list[str]]:
    """Each one-hot encoded feature and its columns, so that plots show the feature."""
    added = [c for c in encoded.columns if c not in features]
    groups = {f: [c for c in added if c.startswith(f"{f}_")] for f in features if f not in encoded}
    return {f: cols for f, cols in groups.items() if cols}


def _row_names(sample: pd.DataFrame) -> list[str] | None:
    """The rows' message ids when they have unique ones, else None (their index)."""
    if "message_id" in sample.columns and sample["message_id"].is_unique:
        return [str(m) for m in sample["message_id"]]
    return None


def _banner(
    title: str,
    data_name: str,
    explained: int,
    available: int,
    seed: int,
    plan: ShapPlan,
    labelled: bool,
) -> str:
    """What the page explains, in a box at its top."""
    text = (
        f"{explained} of {available} {data_name} rows, sampled at random (seed {seed}); "
        f"{plan.description}."
    )
    notes = [
        "The rows' target values score the model."
        if labelled
        else "Not every row has its target value, so the model is explained but not scored."
    ]
    if plan.slow_model:
        notes.append(
            f"One call of this model takes {plan.call_seconds:.1f} s, so the individual "
            "prediction and what-if tabs, which call it many times, are left out."
        )
    lines = "".join(f"<br>{html.escape(line)}" for line in [text, *notes])
    return (
        '<div class="alert alert-info mt-3" role="note" id="gits-explained">'
        f"<strong>{html.escape(title)}</strong>{lines}</div>"
    )


def _render(explainer: BaseExplainer, title: str, banner: str, *, slow_model: bool) -> str:
    """The dashboard's tabs as one static page."""
    # Not ExplainerDashboard(...).to_html(): that builds a Dash app nobody serves and
    # renders every tab twice.
    tabs: list[tuple[type, Any]] = []
    # A static page cannot switch explainerdashboard's class selector: a classifier's
    # importances and statistics are drawn for each class in turn (its pos_label).
    stats = ClassifierModelStatsComposite if explainer.is_classifier else None
    for label in explainer.labels if explainer.is_classifier else [None]:
        tabs.append((ImportancesComposite, label))
        if not explainer.y_missing:
            tabs.append((stats or RegressionModelStatsComposite, label))
    rendered = {}
    for number, (tab, label) in enumerate(tabs, start=1):
        if label is not None:
            explainer.pos_label = label  # the components read it when they are made
        component = tab(explainer, name=str(number))
        name = component.title if label is None else f"{component.title}: {label}"
        rendered[name] = _tab_html(component)
    default = explainer.pos_label_str if explainer.is_classifier else None
    if default is not None:
        explainer.pos_label = default
    suffix = "" if default is None else f": {default}"
    if not slow_model:
        for name, tab_html in explainer_rows.row_tabs(explainer).items():
            rendered[name + suffix] = tab_html
    dependence = ShapDependenceComposite(explainer, name=str(len(tabs) + 1))
    rendered[dependence.title + suffix] = _tab_html(dependence)
    body = banner + to_html.title(html.escape(title)) + to_html.tabs(rendered)
    body += explainer_rows.SCRIPT
    return self_contained(to_html.add_header(body, title=html.escape(title)))


def self_contained(page: str) -> str:
    """The page with plotly.js and Bootstrap inlined once instead of fetched from CDNs
    (one plotly tag per figure): it opens on machines without internet, as plants often are."""
    page = CDN_TAG.sub("", page)
    inline = f"<style>{_asset(BOOTSTRAP_CSS)}</style>\n<script>{_asset(PLOTLY_JS)}</script>\n"
    inline += f"<script>{_asset(BOOTSTRAP_JS)}</script>\n"
    head, found, rest = page.partition("</head>")
    return f"{head}{inline}{found}{rest}" if found else inline + page


@cache
def _asset(path: Path) -> str:
    """A script or stylesheet shipped with an installed package."""
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


def _tab_html(component: Any) -> str:
    """A tab's static HTML, or why it is missing: one odd plot must not cost the page."""
    try:
        return str(component.to_html(add_header=False))
    except Exception as exc:  # explainerdashboard's plots fail on some small samples
        log.warning("tab %r not drawn: %s", component.title, exc, exc_info=True)
        return f"<p>This tab could not be drawn for these rows: {html.escape(str(exc))}</p>"
