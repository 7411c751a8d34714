"""Rows per second into ml_data_api over HTTP: one row a request (the baseline) against
batches of 10,000 rows a request, on the real PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from benchmarks.support import bearer, running_service
from gits_ml.demo import PRODUCT_QUALITY

SINGLE_ROWS = 1000
BULK_REQUESTS, BULK_ROWS = 5, 10_000


def make_rows(n: int, prefix: str) -> list[dict[str, Any]]:
    """n production rows shaped like the demo use case."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        {
            "message_id": f"{prefix}-{i}",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            **{
                name: 200.0 + (i * 7 + j) % 100
                for j, name in enumerate(PRODUCT_QUALITY.feature_names)
            },
            "prediction": 350.0,
            "model_version": "bench:1",
        }
        for i in range(n)
    ]


def rate(client: httpx.Client, url: str, batches: list[list[dict[str, Any]]]) -> float:
    """Rows per second inserting the batches one request each."""
    started = time.perf_counter()
    for rows in batches:
        response = client.post(url, json={"rows": rows})
        response.raise_for_status()
        assert response.json()["inserted"] == len(rows)
    return sum(map(len, batches)) / (time.perf_counter() - started)


def run() -> dict[str, float]:
    """Measure both ways in one run; returns rows/s and their ratio."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    use_case = PRODUCT_QUALITY.model_copy(update={"name": name})
    with (
        running_service("ml_data_api", "ML_DATA_API_PORT") as base,
        httpx.Client(base_url=base, headers=bearer(), timeout=120) as client,
    ):
        client.post(
            "/ml_data_api/use_cases", json=use_case.model_dump(mode="json")
        ).raise_for_status()
        url = f"/ml_data_api/use_cases/{name}/production/rows"
        single = rate(client, url, [[row] for row in make_rows(SINGLE_ROWS, "single")])
        bulk = rate(client, url, [make_rows(BULK_ROWS, f"bulk{b}") for b in range(BULK_REQUESTS)])
    return {
        "single_row_rows_per_s": single,
        "bulk_rows_per_s": bulk,
        "bulk_vs_single": bulk / single,
    }


def report(result: dict[str, float]) -> str:
    """A short table for the terminal."""
    return (
        "ml_data_api inserts over HTTP, real PostgreSQL\n"
        f"  one row a request (baseline): {result['single_row_rows_per_s']:>9,.0f} rows/s\n"
        f"  {BULK_ROWS:,} rows a request:       {result['bulk_rows_per_s']:>9,.0f} rows/s"
        f"  ({result['bulk_vs_single']:.0f}x the baseline)"
    )
