"""Seconds for a static explainer dashboard of 1,000 demo rows, for models trained on the
demo's 4,200 training rows: explainerdashboard with its default exact tree SHAP on a
random forest (the baseline), against retraining_api's engine, which picks the SHAP
method per model, for the usual models and the slowest ones found (kernel SHAP models,
a multiclass gradient boosting classifier, a Gaussian process classifier)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from explainerdashboard import ExplainerDashboard, RegressionExplainer

from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml import modeling
from gits_ml.demo import FEATURES, PRODUCT_QUALITY, TARGET, DemoConfig, generate
from retraining_api.explainer import build_dashboard

ROWS = 1000
GOAL_SECONDS = 30.0
REGRESSORS = ["rf", "et", "lightgbm", "catboost", "lr", "knn", "ada", "svm", "mlp"]
# No tree SHAP for a multiclass gbc; svc and gpc are the slowest to call (gpc: seconds).
CLASSIFIERS = ["gbc", "rbfsvm", "gpc"]
DEMO = generate(DemoConfig(production_minutes=10))
GRADED = PRODUCT_QUALITY.model_copy(
    update={
        "name": "product_grade",
        "task": Task.classification,
        "target": Column(name="grade", type=ColumnType.text),
    }
)


def graded(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows, their quality cut into three about equally common grades."""
    grades = np.array(["low", "mid", "high"])[np.digitize(rows[TARGET], [330.0, 380.0])]
    return rows.drop(columns=[TARGET]).assign(grade=grades)


def baseline(pipeline: Any, rows: pd.DataFrame) -> float:
    """Seconds for explainerdashboard's defaults (exact tree SHAP), interactions off."""
    started = time.perf_counter()
    features = pipeline[:-1].transform(rows[FEATURES])
    explainer = RegressionExplainer(pipeline.steps[-1][1], features, rows[TARGET])
    ExplainerDashboard(explainer, shap_interaction=False).to_html()
    return time.perf_counter() - started


def ours(model: str, use_case: UseCase, data: pd.DataFrame) -> dict[str, float | str]:
    """Seconds, rows explained and SHAP method of our engine for one model id."""
    pipeline, _ = modeling.train(use_case, data, include=[model])
    rows = data.iloc[-ROWS:]
    page = build_dashboard(pipeline, rows, use_case=use_case, title=model, data_name="training")
    return {"s": page.seconds, "rows": page.rows_explained, "shap": page.shap}


def run() -> dict[str, Any]:
    """Baseline seconds, and for each model our seconds, rows, method and ratio."""
    warnings.simplefilter("ignore")  # explainerdashboard warns about every choice it makes
    data = DEMO.training
    forest, _ = modeling.train(PRODUCT_QUALITY, data, include=["rf"])
    result: dict[str, Any] = {"baseline_rf_exact_s": baseline(forest, data.iloc[-ROWS:])}
    runs = [(m, PRODUCT_QUALITY, data) for m in REGRESSORS]
    runs += [(m, GRADED, graded(data)) for m in CLASSIFIERS]
    for model, use_case, frame in runs:
        measured = ours(model, use_case, frame)
        key = f"{use_case.task.value} {model}"
        result[key] = {**measured, "vs_baseline": measured["s"] / result["baseline_rf_exact_s"]}
    return result


def report(result: dict[str, Any]) -> str:
    """A short table for the terminal."""
    base = result["baseline_rf_exact_s"]
    lines = [
        f"explainer dashboard (static HTML), {ROWS:,} of the demo's {len(DEMO.training):,} "
        "training rows, the models trained on all",
        f"  explainerdashboard defaults, rf, exact tree SHAP (baseline): {base:6.1f} s",
    ]
    for name, run_ in result.items():
        if name == "baseline_rf_exact_s":
            continue
        verdict = "met" if run_["s"] < GOAL_SECONDS else "MISSED"
        lines.append(
            f"  {name:26} {run_['s']:5.1f} s  ({run_['vs_baseline']:.3f}x baseline, "
            f"goal < {GOAL_SECONDS:.0f} s {verdict})  {run_['rows']:4} rows, {run_['shap']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
