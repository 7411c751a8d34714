"""Drift with Evidently: which method compares a column, chosen by how much data the
window and the reference hold, the same way in reports and the metric history.

A distance (normed Wasserstein for numbers, Jensen-Shannon for labels, drifted at 0.1)
says how far a distribution moved, in units an alert threshold can use, but on a small
window its noise alone crosses 0.1: on same-distribution data against 10,000 reference
rows (20 seeds, tests/monitoring_api/test_drift.py), normed Wasserstein flagged 95% of
numerical features on 30-row windows, 58% on 100 and 14% on 300, Jensen-Shannon 57% of
the labels on 30 rows (more with many categories). A two-sample test at p < 0.05 flags
about 5% at any size (2-9% measured). So a column is compared by its distance only where
the data are enough for that noise to stay under the threshold, by a test otherwise, the
same way in reports and the history; every result names its method and threshold."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
from evidently.legacy.core import ColumnType as EvidentlyColumnType
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset
from scipy import stats

from gits_common import errors
from gits_common.errors import said
from monitoring_api.frames import Role, classes

log = logging.getLogger(__name__)

DISTANCE_THRESHOLD = 0.1  # a tenth of a standard deviation; the same on the 0..1 JS scale
P_VALUE_THRESHOLD = 0.05
# n·m/(n+m) rows from which normed Wasserstein stays under 0.1 without drift: over six
# distributions (normal, lognormal, uniform, exponential, bimodal, Poisson counts) and
# 200 seeds, it flagged 3.5-6.3% of them at 385 to 476 effective rows (against 1,000,
# 2,000 and 10,000 reference rows alike), 13-15% at about 300 and 27-33% at about 200.
MIN_EFFECTIVE_ROWS = 400

Kind = Literal["distance", "p_value"]


@dataclass(frozen=True)
class Method:
    """How one column's drift is measured: Evidently's method, and when it says drift."""

    evidently: str  # Evidently's name of the method
    name: str
    kind: Kind
    threshold: float

    def drifted(self, score: float) -> bool:
        """A distance drifts at or above its threshold (as in Evidently); a p-value below."""
        if self.kind == "distance":
            return score >= self.threshold
        return score < self.threshold

    def describe(self) -> dict[str, Any]:
        """The method as a report's JSON names it beside each column's score."""
        rule = "score >= " if self.kind == "distance" else "score < "
        return {
            "method": self.name,
            "evidently_method": self.evidently,
            "kind": self.kind,
            "threshold": self.threshold,
            "drifted_when": f"{rule}{self.threshold}",
        }


def _chi_squared_homogeneity(
    reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float
) -> tuple[float, bool]:
    """Pearson's chi-squared test that the window's labels come from the reference's
    distribution, both being samples. Evidently's `chisquare` takes the reference's
    shares as exact: against a 300-row reference it flagged 16-100% of same-distribution
    windows of 300 to 2,000 rows (the more categories, the more), this test 1-11%.
    Categories expected fewer than 5 times in the window are merged first (Cochran's
    rule): with 50 Zipf-distributed categories and 30 rows against 10,000, the plain
    test flagged 14.5% of windows, the merged one 8%."""
    counts = pd.concat([reference.value_counts(), current.value_counts()], axis=1)
    table = _merged_rare(counts.fillna(0).to_numpy(dtype=float).T)
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0, False  # one category, or nothing to compare: no evidence of drift
    p_value = float(stats.chi2_contingency(table, correction=False).pvalue)
    return p_value, p_value < threshold


def _merged_rare(table: np.ndarray) -> np.ndarray:
    """The 2 x k table (reference, window) with the categories expected fewer than 5
    times in the window merged into one, unless that leaves fewer than two."""
    expected = table.sum(axis=0) * table[1].sum() / table.sum()
    rare = expected < 5
    if rare.sum() < 2:
        return table
    merged = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    return merged if merged.shape[1] >= 2 else table


CHI_SQUARED_TEST = StatTest(
    name="chi2_homogeneity",
    display_name="chi-squared test of homogeneity p_value",
    allowed_feature_types=[EvidentlyColumnType.Categorical],
    default_threshold=P_VALUE_THRESHOLD,
)
register_stattest(CHI_SQUARED_TEST, _chi_squared_homogeneity)

WASSERSTEIN = Method("wasserstein", "Wasserstein distance (normed)", "distance", DISTANCE_THRESHOLD)
JENSEN_SHANNON = Method("jensenshannon", "Jensen-Shannon distance", "distance", DISTANCE_THRESHOLD)
KOLMOGOROV_SMIRNOV = Method("ks", "Kolmogorov-Smirnov test (p-value)", "p_value", P_VALUE_THRESHOLD)
CHI_SQUARED = Method(
    CHI_SQUARED_TEST.name,
    "chi-squared test of homogeneity (p-value)",
    "p_value",
    P_VALUE_THRESHOLD,
)
DISTANCES = {Role.numerical: WASSERSTEIN, Role.categorical: JENSEN_SHANNON}
TESTS = {Role.numerical: KOLMOGOROV_SMIRNOV, Role.categorical: CHI_SQUARED}


def effective_rows(current: int, reference: int) -> float:
    """n·m/(n+m): the size of one sample that, against the exact distribution, is as
    noisy as a window of n rows against a reference of m (0 when either is empty)."""
    return current * reference / (current + reference) if current and reference else 0.0


def distance_min_rows(role: Role, categories: int) -> float:
    """The effective rows a column needs to be compared by its distance. For labels,
    also enough for k categories: without drift 8·rows·JS² is about chi-squared with
    k-1 degrees of freedom (JS in nats), so JS stays under 0.1 in 95 windows of 100
    from chi2.ppf(0.95, k-1) / 0.08 rows (measured with 20 and 50 categories: 2-5%)."""
    if role is Role.numerical:
        return MIN_EFFECTIVE_ROWS
    degrees = max(categories - 1, 1)
    labels = float(stats.chi2.ppf(0.95, degrees)) / (8 * DISTANCE_THRESHOLD**2)
    return max(MIN_EFFECTIVE_ROWS, labels)


def choose(current: pd.Series, reference: pd.Series, role: Role) -> Method:
    """The column's distance when the window and the reference hold enough values for
    it, else its two-sample test (Kolmogorov-Smirnov, chi-squared) at p < 0.05."""
    rows = effective_rows(int(current.count()), int(reference.count()))
    categories = 0
    if role is Role.categorical:
        categories = int(pd.concat([current.dropna(), reference.dropna()]).nunique())
    return DISTANCES[role] if rows >= distance_min_rows(role, categories) else TESTS[role]


def describe_rule() -> dict[str, Any]:
    """How methods are chosen, for the JSON of every drift report."""
    return {
        "rule": (
            "each column by its distance when the window (n values) and the reference "
            f"(m values) are enough for it: n*m/(n+m) >= {MIN_EFFECTIVE_ROWS}, and for "
            "labels also >= chi2.ppf(0.95, categories - 1) / 0.08; otherwise by a "
            f"two-sample test, drifted at p < {P_VALUE_THRESHOLD}"
        ),
        "numerical": {"distance": WASSERSTEIN.name, "test": KOLMOGOROV_SMIRNOV.name},
        "categorical": {"distance": JENSEN_SHANNON.name, "test": CHI_SQUARED.name},
        "distance_threshold": DISTANCE_THRESHOLD,
        "p_value_threshold": P_VALUE_THRESHOLD,
        "min_effective_rows": MIN_EFFECTIVE_ROWS,
    }


@dataclass(frozen=True)
class Drift:
    """Evidently's drift snapshot, each column's method and score, and the columns it
    could not measure, with why."""

    snapshot: Snapshot
    methods: dict[str, Method]
    scores: dict[str, float]
    unmeasured: dict[str, str] = field(default_factory=dict)


def isolated(
    run: Callable[[dict[str, Role]], Snapshot], roles: dict[str, Role]
) -> tuple[Snapshot, dict[str, str]]:
    """`run` on every column; when Evidently fails on the whole (a column of numbers so
    large that its histogram overflows, say 1.7e308 beside -1.7e308), each column is
    tried alone, and the columns that fail are left out with the reason. One column's
    values never sink the whole report. Raises only when no column can be measured."""
    try:
        return run(roles), {}
    except Exception as exc:  # Evidently's and numpy's failures take many types
        log.warning("Evidently failed on the columns together (%s); trying each", said(exc))
    unmeasured: dict[str, str] = {}
    for column, role in roles.items():
        try:
            run({column: role})
        except Exception as exc:
            unmeasured[column] = f"cannot be measured: {said(exc)}"
    kept = {c: r for c, r in roles.items() if c not in unmeasured}
    if not kept:
        raise errors.InvalidInput(f"no column can be measured: {unmeasured}")
    return run(kept), unmeasured


def definition(roles: dict[str, Role]) -> DataDefinition:
    """An Evidently data definition of these columns."""
    return DataDefinition(
        numerical_columns=[c for c, r in roles.items() if r is Role.numerical],
        categorical_columns=[c for c, r in roles.items() if r is Role.categorical],
    )


def datasets(
    current: pd.DataFrame, reference: pd.DataFrame, roles: dict[str, Role]
) -> tuple[Dataset, Dataset]:
    """Both frames, cut to these columns, as Evidently datasets (float labels as their
    texts, which Evidently takes as classes)."""
    data = definition(roles)

    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {c: frame[c] if r is Role.numerical else classes(frame[c]) for c, r in roles.items()}
        )

    return (
        Dataset.from_pandas(cut(current), data_definition=data),
        Dataset.from_pandas(cut(reference), data_definition=data),
    )


def measure(
    current: pd.DataFrame, reference: pd.DataFrame, roles: dict[str, Role], *, full: bool
) -> Drift:
    """Evidently's drift of each column by its chosen method. `full` runs the preset,
    whose HTML shows each distribution; otherwise only the scores are computed, about
    twice as fast."""
    methods = {c: choose(current[c], reference[c], role) for c, role in roles.items()}

    def run(columns: dict[str, Role]) -> Snapshot:
        chosen = {c: methods[c] for c in columns}
        metrics: list[Any]
        if full:
            metrics = [
                DataDriftPreset(
                    columns=list(columns),
                    per_column_method={c: m.evidently for c, m in chosen.items()},
                    per_column_threshold={c: m.threshold for c, m in chosen.items()},
                )
            ]
        else:
            metrics = [
                ValueDrift(column=c, method=m.evidently, threshold=m.threshold)
                for c, m in chosen.items()
            ]
        return Report(metrics).run(*datasets(current, reference, columns))

    snapshot, unmeasured = isolated(run, roles)
    return Drift(snapshot, methods, _scores(snapshot), unmeasured)


def _scores(snapshot: Snapshot) -> dict[str, float]:
    """Each column's drift score in a drift snapshot."""
    found: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift"):
            found[config["column"]] = float(metric["value"])
    return found


def summary(found: Drift) -> dict[str, Any]:
    """Drift share, drifted count, how methods were chosen, and each column's score,
    whether it drifted, and the method and threshold that said so."""
    drifted = {c: found.methods[c].drifted(s) for c, s in found.scores.items()}
    count = sum(drifted.values())
    return {
        "drift_methods": describe_rule(),
        "drift_share": count / len(drifted) if drifted else 0.0,
        "drifted_features": count,
        "features": {
            c: {"score": s, "drifted": drifted[c], **found.methods[c].describe()}
            for c, s in found.scores.items()
        },
        "unmeasured": found.unmeasured,
    }
