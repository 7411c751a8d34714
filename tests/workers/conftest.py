"""A running platform slice for worker tests: ml_data_api and queue_manager on real
ports, a demo use case of the test's own, two trained PyCaret models, and worker
replicas as real processes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gits_common.schemas import UseCase
from gits_ml import modeling
from gits_ml.demo import PRODUCT_QUALITY, TARGET, DemoConfig, generate
from ml_data_api.app import create_app as create_ml_data_api
from ml_data_api.settings import load_settings as ml_data_api_settings
from queue_manager.app import create_app as create_queue_manager
from queue_manager.settings import load_settings as queue_manager_settings
from tests.amqp_helpers import delete_service_queues
from tests.conftest import LiveServer, free_port, private_store

ROOT = Path(__file__).resolve().parents[2]
DEMO = generate(DemoConfig(history_hours=800, production_minutes=3000))


@pytest.fixture(scope="session")
def model_files() -> dict[int, bytes]:
    """Two real PyCaret pipelines whose predictions differ by about 100."""
    v1, _ = modeling.train(PRODUCT_QUALITY, DEMO.training, include=["lr"])
    shifted = DEMO.training.assign(**{TARGET: DEMO.training[TARGET] + 100})
    v2, _ = modeling.train(PRODUCT_QUALITY, shifted, include=["lr"])
    return {1: modeling.to_bytes(v1), 2: modeling.to_bytes(v2)}


@pytest.fixture(scope="module")
def queue_manager_port() -> int:
    """The port queue_manager will answer on: ml_data_api asks it before it deletes a
    use case, and is made first."""
    return free_port()


@pytest.fixture(scope="module")
def ml_data_server(postgres_dsn, queue_manager_port) -> Iterator[LiveServer]:
    """ml_data_api, served on a free port."""
    settings = dataclasses.replace(
        ml_data_api_settings(), queue_manager_url=f"http://127.0.0.1:{queue_manager_port}"
    )
    with LiveServer(create_ml_data_api(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def queue_manager_app(rabbitmq_url, ml_data_server) -> FastAPI:
    """The queue_manager the workers use; its in-memory store lives in this process, and
    it checks uploads against the served ml_data_api in a sandbox warmed with PyCaret."""
    settings = dataclasses.replace(
        private_store(queue_manager_settings()), ml_data_api_url=ml_data_server.url
    )
    return create_queue_manager(settings)


@pytest.fixture(scope="module")
def apis(ml_data_server, queue_manager_app, queue_manager_port) -> Iterator[dict[str, str]]:
    """ml_data_api and queue_manager, served on free ports."""
    with LiveServer(queue_manager_app, port=queue_manager_port) as queue_manager:
        yield {"ml_data_api": ml_data_server.url, "queue_manager": queue_manager.url}


@dataclass
class Platform:
    """One test's use case, service and workers, and ways to look at their results."""

    apis: dict[str, str]
    token: str
    amqp_url: str
    use_case: UseCase
    service: str
    routing_key: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[int, Any] = field(default_factory=dict)

    def http(self, api: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.apis[api], timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        )

    def upload(self, content: bytes) -> dict[str, Any]:
        form = {
            "name": self.use_case.name,
            "use_case": self.use_case.name,
            "task": "regression",
            "features": json.dumps(self.use_case.feature_names),
        }
        with self.http("queue_manager") as qm:
            response = qm.post(
                "/queue_manager/algorithms", data=form, files={"file": ("m.pkl", content)}
            )
        response.raise_for_status()
        return response.json()

    def bind(self, version: int | str) -> dict[str, Any]:
        with self.http("queue_manager") as qm:
            response = qm.put(
                f"/queue_manager/services/{self.service}",
                json={
                    "routing_key": self.routing_key,
                    "algorithm_name": self.use_case.name,
                    "algorithm_version": version,
                },
            )
        response.raise_for_status()
        return response.json()

    def worker_env(self, **env: str) -> dict[str, str]:
        """The environment of a worker of this test's service, with `env` added."""
        return {
            **os.environ,
            "SERVICE_NAME": self.service,
            "QUEUE_MANAGER_URL": self.apis["queue_manager"],
            "ML_DATA_API_URL": self.apis["ml_data_api"],
            "LOG_LEVEL": "INFO",
            "WORKER_RETRY_BASE_DELAY": "0.2",
            **env,
        }

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        # A file, not a pipe: nobody reads a pipe while the worker runs, and a full one
        # would block the worker.
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the platform fixture)
        process = subprocess.Popen(
            [sys.executable, "-m", "workers"], cwd=ROOT, stderr=log, env=self.worker_env(**env)
        )
        self.workers.append(process)
        self.logs[process.pid] = log
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        """What a worker has logged so far."""
        return self.log_of_pid(process.pid)

    def log_of_pid(self, pid: int) -> str:
        """What the worker with this pid has logged so far."""
        log = self.logs[pid]
        log.seek(0)
        return log.read().decode(errors="replace")

    def jobs(self) -> list[dict[str, Any]]:
        with self.http("queue_manager") as qm:
            response = qm.get(
                "/queue_manager/jobs", params={"service": self.service, "limit": 10_000}
            )
        response.raise_for_status()
        return response.json()

    def production(self, pg) -> list[tuple[Any, ...]]:
        with pg.cursor() as cur:
            table = f"{self.use_case.name}_production"
            cur.execute(f'SELECT message_id, prediction, model_version FROM "{table}"')
            return cur.fetchall()

    def stop_workers(self) -> list[str]:
        """SIGTERM every worker; their logs."""
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            process.wait(timeout=30)
        logs = [self.log_of(process) for process in self.workers]
        self.workers.clear()
        return logs


@pytest.fixture
def platform(apis, api_token, rabbitmq_url, model_files) -> Iterator[Platform]:
    """A fresh use case and a service bound to model version 1 (no workers yet)."""
    suffix = uuid.uuid4().hex[:8]
    use_case = PRODUCT_QUALITY.model_copy(update={"name": f"pq_{suffix}"})
    slice_ = Platform(
        apis, api_token, rabbitmq_url, use_case, f"service_{suffix}", f"gits.test.{suffix}"
    )
    with slice_.http("ml_data_api") as ml:
        ml.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json")).raise_for_status()
    slice_.upload(model_files[1])
    slice_.bind(1)
    yield slice_
    for process in slice_.workers:
        process.kill()
        process.wait()
    for pid, log in slice_.logs.items():  # shown by pytest when the test failed
        print(f"--- worker {pid} ---\n{slice_.log_of_pid(pid)[-4000:]}")
        log.close()
    delete_service_queues(rabbitmq_url, slice_.service)


def demo_messages(n: int, *, start: int = 0, prefix: str = "") -> list[dict[str, Any]]:
    """n sensor messages from the demo's production readings."""
    rows = DEMO.production.iloc[start : start + n]
    return [
        {
            "message_id": f"{prefix}{row.message_id}",
            "timestamp": row.timestamp.isoformat(),
            "features": {f: getattr(row, f) for f in PRODUCT_QUALITY.feature_names},
        }
        for row in rows.itertuples()
    ]
