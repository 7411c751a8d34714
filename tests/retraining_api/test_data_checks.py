"""Retraining never reports a meaningless result nor promotes on a missing comparison: a
classification use case whose rows cannot be cross-validated or judged is refused (422
before a job, a failed job with the class counts otherwise, never promoted), and a
champion whose metric cannot be computed is kept with the reason."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from gits_common.clients import rows_from_frame
from gits_common.postgres import Database
from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml import modeling
from retraining_api import jobs, store
from retraining_api.schemas import JobKind, JobRead
from retraining_api.settings import Settings, load_settings
from tests.amqp_helpers import delete_service_queues
from tests.retraining_api.conftest import FAST_MODELS, wait_for_job

PUMPS = UseCase(
    name="pumps",
    task=Task.classification,
    features=[Column(name="vibration"), Column(name="rpm")],
    target=Column(name="state", type=ColumnType.text),
    time_column="time",
)
GOOD = {"ok": 120, "fault": 80}
GOOD_HOLDOUT = {"ok": 30, "fault": 20}


def readings(counts: dict[str, int], *, seed: int, start: str) -> pd.DataFrame:
    """Pump readings, one a minute from `start`, with `counts` rows of each state; faults
    vibrate more, so a model can learn them."""
    rng = np.random.default_rng(seed)
    states = [state for state, n in counts.items() for _ in range(n)]
    rng.shuffle(states)
    n = len(states)
    fault = np.array([s == "fault" for s in states])
    return pd.DataFrame(
        {
            "message_id": [f"{start}-{seed}-{i}" for i in range(n)],
            "time": pd.date_range(start, periods=n, freq="min", tz="UTC"),
            "vibration": rng.normal(1.0, 0.4, n) + 2.0 * fault,
            "rpm": rng.normal(1500, 50, n),
            "state": states,
        }
    )


@pytest.fixture(scope="module")
def ridge_champion() -> bytes:
    """A ridge classifier for the pumps: it predicts, but has no probabilities (no AUC)."""
    pipeline, _ = modeling.train(
        PUMPS, readings(GOOD, seed=9, start="2024-01-01"), include=["ridge"], fold=2
    )
    return modeling.to_bytes(pipeline)


@dataclasses.dataclass(frozen=True)
class Pumps:
    """One test's classification use case, and its service when it has one."""

    name: str
    service: str | None


@pytest.fixture
def pumps(apis, api_token, rabbitmq_url) -> Iterator[Callable[..., Pumps]]:
    """Makes a pumps use case with training and testing rows of the given class counts,
    and, given a model file, a service bound to it as version 1."""
    headers = {"Authorization": f"Bearer {api_token}"}
    services: list[str] = []

    def make(training: dict[str, int], testing: dict[str, int], champion: bytes | None = None):
        suffix = uuid.uuid4().hex[:8]
        use_case = PUMPS.model_copy(update={"name": f"pumps_{suffix}"})
        name = use_case.name
        with httpx.Client(base_url=apis["ml_data_api"], headers=headers, timeout=30) as ml:
            body = use_case.model_dump(mode="json")
            ml.post("/ml_data_api/use_cases", json=body).raise_for_status()
            for table, frame in (
                ("training", readings(training, seed=1, start="2024-02-01")),
                ("testing", readings(testing, seed=2, start="2024-03-01")),
            ):
                rows = rows_from_frame(frame)
                path = f"/ml_data_api/use_cases/{name}/{table}/rows"
                ml.post(path, json={"rows": rows}).raise_for_status()
        if champion is None:
            return Pumps(name, None)
        service = f"service_{suffix}"
        with httpx.Client(base_url=apis["queue_manager"], headers=headers, timeout=30) as qm:
            form = {
                "name": name,
                "use_case": name,
                "task": "classification",
                "features": json.dumps(use_case.feature_names),
            }
            files = {"file": ("m.pkl", champion)}
            qm.post("/queue_manager/algorithms", data=form, files=files).raise_for_status()
            binding = {
                "routing_key": f"gits.test.{suffix}",
                "algorithm_name": name,
                "algorithm_version": 1,
            }
            qm.put(f"/queue_manager/services/{service}", json=binding).raise_for_status()
        services.append(service)
        return Pumps(name, service)

    yield make
    for service in services:
        delete_service_queues(rabbitmq_url, service)


def service_version(apis: dict[str, str], token: str, service: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=apis["queue_manager"], headers=headers) as qm:
        return int(qm.get(f"/queue_manager/services/{service}").json()["resolved_version"])


@pytest.fixture
def job_settings(apis, tmp_path: Path) -> Settings:
    """retraining_api's settings for running a job in this process."""
    return dataclasses.replace(
        load_settings(),
        ml_data_api_url=apis["ml_data_api"],
        queue_manager_url=apis["queue_manager"],
        artifacts_dir=tmp_path,
        default_models=FAST_MODELS,
    )


def run_job_directly(settings: Settings, pumps: Pumps, **request: Any) -> JobRead:
    """Store a retraining job without the API's checks and run it here, as a job process
    would: what the job does when the data changed after the API accepted it."""
    db = Database(settings.postgres.dsn("tests"), minconn=1, maxconn=1)
    try:
        db.run(lambda conn: store.ensure_schema(conn=conn))
        body = {"use_case": pumps.name, "service": pumps.service, **request}
        job = db.run(
            lambda conn: store.insert_job(
                conn=conn,
                kind=JobKind.retraining,
                use_case=pumps.name,
                service=pumps.service,
                request=body,
                requested_by="tester",
            )
        )
        assert job is not None
        jobs.run(settings, JobKind.retraining, job.id)
        done = db.run(lambda conn: store.get_job(conn=conn, job_id=job.id))
    finally:
        db.close()
    assert done is not None
    return done


REFUSED = [
    pytest.param(
        {"ok": 200}, GOOD_HOLDOUT, ["single class of state: {'ok': 200}", "at least 6 rows"],
        id="single-class",
    ),
    pytest.param(
        {"ok": 199, "fault": 1}, GOOD_HOLDOUT,
        ["class counts {'fault': 1, 'ok': 199}", "every class needs at least 6 rows"],
        id="one-row-class",
    ),
    pytest.param(
        GOOD, {"ok": 40}, ["held-out rows", "single class of state: {'ok': 40}"],
        id="single-class-holdout",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("training", "testing", "reasons"), REFUSED)
def test_data_that_cannot_be_judged_is_refused_before_a_job(
    pumps, retraining, training, testing, reasons
):
    case = pumps(training, testing)

    response = retraining.post("/retraining_api/jobs", json={"use_case": case.name})

    assert response.status_code == 422, response.text
    assert all(reason in response.json()["detail"] for reason in reasons), response.text
    assert retraining.get("/retraining_api/jobs", params={"use_case": case.name}).json() == []


@pytest.mark.slow  # trains the champion
@pytest.mark.parametrize(("training", "testing", "reasons"), REFUSED)
def test_a_job_on_such_data_fails_with_the_counts_and_is_never_promoted(
    pumps, retraining, ridge_champion, job_settings, apis, api_token, training, testing, reasons
):
    case = pumps(training, testing, champion=ridge_champion)

    job = run_job_directly(job_settings, case, models=["lr"], auto_promote=True)

    assert job.status.value == "failed" and job.result is None
    assert all(reason in str(job.error) for reason in reasons), job.error
    assert not (job_settings.artifacts_dir / "challengers" / f"job-{job.id}.pkl").exists()
    manual = retraining.post(f"/retraining_api/jobs/{job.id}/promote", json={})
    assert manual.status_code == 409 and "is failed" in manual.json()["detail"]
    assert service_version(apis, api_token, str(case.service)) == 1
    promotions = retraining.get("/retraining_api/promotions", params={"service": case.service})
    assert promotions.json() == []


@pytest.mark.slow
def test_a_champion_without_the_metric_is_kept_and_the_decision_says_why(
    pumps, retraining, ridge_champion, apis, api_token
):
    # Given a champion that cannot give probabilities, so its AUC cannot be computed...
    case = pumps(GOOD, GOOD_HOLDOUT, champion=ridge_champion)

    # ...when a job selecting on AUC may auto-promote...
    started = retraining.post(
        "/retraining_api/jobs",
        json={"use_case": case.name, "models": ["lr"], "metric": "AUC", "auto_promote": True},
    )
    assert started.status_code == 202, started.text
    done = wait_for_job(retraining, f"/retraining_api/jobs/{started.json()['id']}")

    # ...then the challenger is scored, the champion's AUC is missing with the reason, and
    # nothing is promoted.
    assert done["status"] == "finished", done["error"]
    result = done["result"]
    assert isinstance(result["retrained_model_results"]["AUC"], float)
    assert result["previous_model_results"]["AUC"] is None
    assert "predict_proba" in result["unscored"]["champion"]["AUC"]
    assert isinstance(result["previous_model_results"]["Accuracy"], float)
    decision = result["decision"]
    assert (decision["promoted"], decision["basis"]) == (False, "champion_unscored")
    assert f"champion {case.name}:1's AUC could not be computed" in decision["reason"]
    assert result["promotion"] is None
    assert service_version(apis, api_token, str(case.service)) == 1
    promotions = retraining.get("/retraining_api/promotions", params={"service": case.service})
    assert promotions.json() == []
    # A person who reads the reason may still promote it by hand.
    manual = retraining.post(f"/retraining_api/jobs/{done['id']}/promote", json={})
    assert manual.status_code == 201, manual.text
    assert service_version(apis, api_token, str(case.service)) == 2


class Broken:
    """A champion that loaded but cannot predict."""

    def predict(self, features: pd.DataFrame) -> None:
        raise RuntimeError("feature names do not match")


def unloadable(content: bytes) -> Any:
    raise ValueError("invalid load key, 'x'")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("load", "reason"),
    [
        (unloadable, "could not be loaded: invalid load key"),
        (lambda content: Broken(), "could not predict the held-out rows: RuntimeError"),
    ],
    ids=["not-loaded", "cannot-predict"],
)
def test_a_champion_that_fails_to_load_or_predict_is_never_auto_replaced(
    pumps, ridge_champion, job_settings, apis, api_token, monkeypatch, load, reason
):
    case = pumps(GOOD, GOOD_HOLDOUT, champion=ridge_champion)
    monkeypatch.setattr(modeling, "from_bytes", load)  # only the champion is loaded

    job = run_job_directly(job_settings, case, models=["lr"], auto_promote=True)

    assert job.status.value == "finished", job.error
    result = job.result or {}
    assert reason in result["champion_error"]
    assert all(result["previous_model_results"][m] is None for m in ("Accuracy", "AUC", "F1"))
    assert isinstance(result["retrained_model_results"]["Accuracy"], float)
    decision = result["decision"]
    assert (decision["promoted"], decision["basis"]) == (False, "champion_unscored")
    assert reason in decision["reason"]
    assert service_version(apis, api_token, str(case.service)) == 1
