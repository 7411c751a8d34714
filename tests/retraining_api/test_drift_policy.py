"""With RETRAINING_ON_DRIFT, a real drift episode seen by the real monitoring_api starts
one retraining job for its use case, whatever the number of alerts its points raise; a
calm point ends the episode, and the next one starts the next job. With
RETRAINING_ON_DRIFT_AUTO_PROMOTE, a challenger that beats the champion is promoted."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from gits_common.clients import rows_from_frame
from gits_ml.demo import PRODUCT_QUALITY
from monitoring_api.app import create_app as create_monitoring_api
from retraining_api.app import create_app as create_retraining_api
from retraining_api.settings import load_settings
from tests.amqp_helpers import wait_until
from tests.conftest import LiveServer
from tests.monitoring_api.conftest import HISTORY_WINDOW, monitoring_settings
from tests.retraining_api.conftest import wait_for_job
from tests.workers.conftest import DEMO

FEATURES = PRODUCT_QUALITY.feature_names


def readings(source: pd.DataFrame, *, prefix: str, after: pd.Timestamp, scale: float) -> list:
    """HISTORY_WINDOW production rows made from `source`'s features (times `scale`),
    a minute apart after `after`, with ids of their own: a whole window of the history."""
    frame = source.tail(HISTORY_WINDOW).reset_index(drop=True)
    frame = (
        frame[FEATURES]
        .mul(scale)
        .assign(
            message_id=[f"{prefix}{i}" for i in range(len(frame))],
            timestamp=[after + timedelta(minutes=i + 1) for i in range(len(frame))],
            prediction=0.0,
        )
    )
    return rows_from_frame(frame)


@pytest.mark.slow
def test_one_drift_episode_starts_one_retraining_which_auto_promotes(
    loaded, apis, api_token, model_files, tmp_path: Path
):
    name = loaded.use_case.name
    # Given a champion that predicts about 100 too high, and alerts on every point
    loaded.upload(model_files[2])
    loaded.bind(2)
    settings = dataclasses.replace(
        load_settings(),
        ml_data_api_url=apis["ml_data_api"],
        queue_manager_url=apis["queue_manager"],
        artifacts_dir=tmp_path,
        default_models=("lr",),
        on_drift=True,
        on_drift_auto_promote=True,
        drift_poll_seconds=0.3,
    )
    headers = {"Authorization": f"Bearer {api_token}"}
    monitoring_app = create_monitoring_api(monitoring_settings(apis, alert_cooldown_seconds=0.0))
    with LiveServer(monitoring_app) as monitoring:
        settings = dataclasses.replace(settings, monitoring_api_url=monitoring.url)
        with (
            LiveServer(create_retraining_api(settings)) as retraining,
            httpx.Client(headers=headers, timeout=120) as http,
        ):
            jobs_url = f"{retraining.url}/retraining_api/jobs"
            use_case_url = f"{monitoring.url}/monitoring_api/use_cases/{name}"
            rows_url = f"{apis['ml_data_api']}/ml_data_api/use_cases/{name}/production/rows"
            last = DEMO.production.timestamp.max()

            def point(rows: list) -> list[dict]:
                """Store a window of readings, compute a history point: its alerts."""
                nonlocal last
                http.post(rows_url, json={"rows": rows}).raise_for_status()
                last = pd.Timestamp(rows[-1]["timestamp"])
                done = http.post(f"{use_case_url}/history/run").raise_for_status().json()
                return [a for a in done["alerts"] if a["metric"] == "drift_share"]

            def policy_jobs() -> list[dict]:
                jobs = http.get(jobs_url, params={"use_case": name}).json()
                return [j for j in jobs if j["requested_by"] == "drift-policy"]

            # When the sensors drift (every feature three times its size)...
            assert point(readings(DEMO.production, prefix="d1-", after=last, scale=3.0))
            # ...then the policy starts one retraining job, and it promotes a better model
            first = wait_until(policy_jobs, timeout=30)
            assert len(first) == 1 and first[0]["service"] == loaded.service
            done = wait_for_job(http, f"{jobs_url}/{first[0]['id']}")
            assert done["status"] == "finished", done["error"]
            assert done["request"]["auto_promote"] is True
            assert done["result"]["decision"]["promoted"] is True
            with loaded.http("queue_manager") as qm:
                bound = qm.get(f"/queue_manager/services/{loaded.service}").json()
            assert (bound["resolved_version"], bound["updated_by"]) == (3, "auto-promote")

            # When the drift goes on, its points raising alerts again (no cool-down)...
            assert point(readings(DEMO.production, prefix="d2-", after=last, scale=3.0))
            time.sleep(1.5)  # several polls of the policy
            # ...then no job more: the episode has had its retraining
            assert len(policy_jobs()) == 1

            # When a calm point ends the episode and the sensors drift again
            assert point(readings(DEMO.training, prefix="c1-", after=last, scale=1.0)) == []
            assert point(readings(DEMO.production, prefix="d3-", after=last, scale=0.2))
            # Then the new episode starts one new job
            second = wait_until(lambda: [j for j in policy_jobs() if j["id"] != first[0]["id"]])
            assert len(second) == 1
            wait_for_job(http, f"{jobs_url}/{second[0]['id']}")
            assert len(policy_jobs()) == 2
