"""`python -m benchmarks`: run every benchmark and print its report."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import (
    anomaly_detection,
    explainer_dashboards,
    ml_data_api_inserts,
    monitoring_reports,
    pipeline_throughput,
    queue_manager_store,
    retraining_jobs,
)

BENCHMARKS = {
    "anomaly_detection": anomaly_detection,
    "explainer_dashboards": explainer_dashboards,
    "ml_data_api_inserts": ml_data_api_inserts,
    "monitoring_reports": monitoring_reports,
    "pipeline_throughput": pipeline_throughput,
    "queue_manager_store": queue_manager_store,
    "retraining_jobs": retraining_jobs,
}


def main() -> None:
    """Run them all; keep the raw numbers in var/bench/ for comparison between runs."""
    out = Path("var/bench")
    out.mkdir(parents=True, exist_ok=True)
    for name, bench in BENCHMARKS.items():
        result = bench.run()
        print(bench.report(result))
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
