"""The Postman collection is a test suite: newman runs it against the four APIs, started
as real processes, and every request passes its tests, none untested.

newman is installed into .tools/ by scripts/ensure-newman.sh (`make test` runs it).
Locally a missing newman skips the test; under CI it fails it, like a missing PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scripts import postman, postman_journey
from tests.amqp_helpers import delete_service_queues
from tests.conftest import TOKENS, need_server
from tests.live_platform import ROOT, Platform, running_apis

NEWMAN = Path(os.environ.get("NEWMAN_PATH", ROOT / ".tools" / "node_modules" / ".bin" / "newman"))


@pytest.fixture(scope="module")
def newman() -> Path:
    """The newman of scripts/ensure-newman.sh."""
    if not os.access(NEWMAN, os.X_OK):
        need_server("newman (scripts/ensure-newman.sh)", FileNotFoundError(NEWMAN))
    return NEWMAN


def run_newman(newman: Path, platform: Platform, workdir: Path) -> dict[str, Any]:
    """Run the committed collection with the platform's URLs and the test tokens; the
    JSON report."""
    report = workdir / "newman.json"
    variables = {f"{api}_url": url for api, url in platform.urls.items()}
    variables |= {f"{role}_token": token for role, token in TOKENS.items()}
    command = [str(newman), "run", str(postman.OUTPUT), "--working-dir", str(workdir)]
    command += [arg for key, value in variables.items() for arg in ("--env-var", f"{key}={value}")]
    command += ["--reporters", "cli,json", "--reporter-json-export", str(report)]
    command += ["--timeout-request", "300000", "--disable-unicode", "--color", "off"]
    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=840)
    print(run.stdout[-20000:], run.stderr[-5000:])
    assert report.exists(), f"newman wrote no report (exit {run.returncode}):\n{run.stderr}"
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def failures(report: dict[str, Any]) -> list[str]:
    """Each failure as one line: the request, then what failed."""
    return [
        f"{f.get('source', {}).get('name', '?')}: {f['error'].get('test') or ''} "
        f"{f['error'].get('message', '')}"
        for f in report["run"]["failures"]
    ]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_request_of_the_collection_passes_its_tests(
    newman: Path, postgres_dsn: str, rabbitmq_url: str, tmp_path: Path
) -> None:
    # Given the model file the collection uploads, written by the command the README gives
    model = tmp_path / postman_journey.MODEL_FILE
    training = subprocess.Popen(
        [sys.executable, "scripts/postman.py", "--model-file", str(model)], cwd=ROOT
    )
    try:
        with running_apis(tmp_path, MONITORING_INTERVAL_SECONDS="0") as platform:
            assert training.wait(timeout=300) == 0, "python scripts/postman.py --model-file failed"
            # When newman runs the collection against the platform
            report = run_newman(newman, platform, tmp_path)
    finally:
        training.kill()
        for service in ("service", "extra_service"):
            delete_service_queues(rabbitmq_url, postman_journey.VARIABLES[service])

    # Then nothing failed, and every request ran and checked something each time
    assert failures(report) == []
    executions = report["run"]["executions"]
    untested = [e["item"]["name"] for e in executions if not e.get("assertions")]
    assert untested == [], "requests without a test"
    ran = Counter(e["item"]["name"] for e in executions)
    in_collection = [
        i["name"] for f in json.loads(postman.OUTPUT.read_text())["item"] for i in f["item"]
    ]
    assert [name for name in in_collection if not ran[name]] == [], "requests that did not run"
    assert report["run"]["stats"]["assertions"]["failed"] == 0
