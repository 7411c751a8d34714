"""With RETRAINING_ON_DRIFT, a drift alert raised by the real monitoring_api starts one
retraining job for its use case."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx

from monitoring_api.app import create_app as create_monitoring_api
from retraining_api.app import create_app as create_retraining_api
from retraining_api.settings import load_settings
from tests.amqp_helpers import wait_until
from tests.conftest import LiveServer
from tests.monitoring_api.conftest import monitoring_settings


def test_a_drift_alert_starts_one_retraining_job(loaded, apis, api_token, tmp_path: Path):
    name = loaded.use_case.name
    settings = dataclasses.replace(
        load_settings(),
        ml_data_api_url=apis["ml_data_api"],
        queue_manager_url=apis["queue_manager"],
        artifacts_dir=tmp_path,
        default_models=("lr",),
        on_drift=True,
        drift_poll_seconds=0.3,
    )
    headers = {"Authorization": f"Bearer {api_token}"}
    with LiveServer(create_monitoring_api(monitoring_settings(apis))) as monitoring:
        settings = dataclasses.replace(settings, monitoring_api_url=monitoring.url)
        with (
            LiveServer(create_retraining_api(settings)) as retraining,
            httpx.Client(headers=headers, timeout=60) as http,
        ):
            jobs_url = f"{retraining.url}/retraining_api/jobs"
            assert http.get(jobs_url, params={"use_case": name}).json() == []
            # Given thresholds every window crosses, when a history point is computed...
            use_case_url = f"{monitoring.url}/monitoring_api/use_cases/{name}"
            http.put(f"{use_case_url}/thresholds", json={"drift_share": 0.0}).raise_for_status()
            http.post(f"{use_case_url}/history/run").raise_for_status()
            assert any(
                a["metric"] == "drift_share" for a in http.get(f"{use_case_url}/alerts").json()
            )

            # ...then the policy starts a retraining job for that use case, and only one.
            jobs = wait_until(lambda: http.get(jobs_url, params={"use_case": name}).json())
            time.sleep(1.0)  # several more polls
            assert http.get(jobs_url, params={"use_case": name}).json() == jobs
            assert [(j["requested_by"], j["service"]) for j in jobs] == [
                ("drift-policy", loaded.service)
            ]
