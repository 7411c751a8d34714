"""Seconds for a data drift report of 10,000 production rows against 10,000 training
rows through monitoring_api (reading both through ml_data_api), cold and from its cache,
against Evidently alone on the same frames (the baseline), on the real PostgreSQL."""

from __future__ import annotations

import os
import statistics
import time
import uuid
import warnings
from unittest import mock

import httpx
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from benchmarks.support import bearer, running_service
from gits_common.clients import rows_from_frame
from gits_ml.demo import FEATURES, PRODUCT_QUALITY, DemoConfig, generate

ROWS = 10_000
SAMPLES = 3
GOAL_SECONDS = 3.0
DEMO = generate(DemoConfig(history_hours=ROWS * 10 // 7 + 10, production_minutes=ROWS))


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The production rows and the newest training rows the report compares."""
    return DEMO.production.iloc[-ROWS:], DEMO.training.iloc[-ROWS:]


def evidently_alone(current: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Seconds for Evidently's drift preset, same method and threshold, and its JSON."""
    definition = DataDefinition(numerical_columns=FEATURES)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset(method="wasserstein", threshold=0.1, columns=FEATURES)]).run(
        Dataset.from_pandas(current[FEATURES], data_definition=definition),
        Dataset.from_pandas(reference[FEATURES], data_definition=definition),
    )
    snapshot.json()
    return time.perf_counter() - started


def timed_report(client: httpx.Client, url: str, last: int, cache: str) -> float:
    """Seconds for one JSON data drift report of the newest `last` rows."""
    started = time.perf_counter()
    response = client.get(url, params={"last": last})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert response.headers["X-Cache"] == cache, response.headers["X-Cache"]
    return elapsed


def load(client: httpx.Client, ml: str, name: str) -> None:
    """A use case holding the frames, inserted through ml_data_api."""
    use_case = PRODUCT_QUALITY.model_copy(update={"name": name})
    body = use_case.model_dump(mode="json")
    client.post(f"{ml}/ml_data_api/use_cases", json=body).raise_for_status()
    current, reference = frames()
    for table, frame in (("training", reference), ("production", current)):
        url = f"{ml}/ml_data_api/use_cases/{name}/{table}/rows"
        client.post(url, json={"rows": rows_from_frame(frame)}).raise_for_status()


def run() -> dict[str, float]:
    """Median seconds cold, cached and for Evidently alone, and the ratios."""
    warnings.simplefilter("ignore")  # Evidently's pandas warnings would drown the report
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with (
        running_service("ml_data_api", "ML_DATA_API_PORT") as ml,
        httpx.Client(headers=bearer(), timeout=120) as client,
    ):
        load(client, ml, name)
        settings = {"ML_DATA_API_URL": ml, "MONITORING_INTERVAL_SECONDS": "0"}
        with (
            mock.patch.dict(os.environ, settings),
            running_service("monitoring_api", "MONITORING_API_PORT") as monitoring,
        ):
            url = f"{monitoring}/monitoring_api/use_cases/{name}/reports/data_drift"
            # Each window differs by a row, so each first request is a cold one.
            cold = [timed_report(client, url, ROWS - i, "miss") for i in range(SAMPLES)]
            cached = [timed_report(client, url, ROWS, "hit") for _ in range(SAMPLES)]
    alone = [evidently_alone(*frames()) for _ in range(SAMPLES)]
    result = {
        "api_first_s": cold[0],  # the first report the fresh process makes
        "api_cold_s": statistics.median(cold),
        "api_cached_s": statistics.median(cached),
        "evidently_alone_s": statistics.median(alone),
    }
    result["cold_vs_evidently"] = result["api_cold_s"] / result["evidently_alone_s"]
    result["cached_vs_evidently"] = result["api_cached_s"] / result["evidently_alone_s"]
    return result


def report(result: dict[str, float]) -> str:
    """A short table for the terminal."""
    verdict = "met" if result["api_first_s"] < GOAL_SECONDS else "MISSED"
    return (
        f"monitoring_api data drift report, {ROWS:,} vs {ROWS:,} rows, median of {SAMPLES}\n"
        f"  Evidently alone (baseline): {result['evidently_alone_s']:6.2f} s\n"
        f"  through the API, first:     {result['api_first_s']:6.2f} s"
        f"  (goal < {GOAL_SECONDS:.0f} s: {verdict})\n"
        f"  through the API, cold:      {result['api_cold_s']:6.2f} s"
        f"  ({result['cold_vs_evidently']:.2f}x the baseline)\n"
        f"  through the API, cached:    {result['api_cached_s']:6.2f} s"
        f"  ({result['cached_vs_evidently']:.2f}x the baseline)"
    )


if __name__ == "__main__":
    print(report(run()))
