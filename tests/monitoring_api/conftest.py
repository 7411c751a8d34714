"""A platform slice for monitoring_api: ml_data_api (real PostgreSQL) and queue_manager
(in-memory) served on real ports, a PyCaret model of the demo trained once per session,
and use cases of each test's own whose production rows are put in through ml_data_api.

Production rows are the demo's lab-sampled readings (its ground-truth split, about one
an hour), not every minute: the demo's sensors wander for hours (AR(1), phi 0.995 a
minute), so a few hundred consecutive minutes cover only a sliver of their range and
every feature would look drifted against the training table. Seed 10: over the windows
the tests look at, no sensor of it wanders past a drift score of 0.3 by itself (seed 7,
the default, takes chamber 1 0.6 standard deviations off for 300 hours), while the
drift knob takes chamber 3 to about 0.9."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

from gits_common.clients import rows_from_frame
from gits_common.schemas import UseCase
from gits_common.settings import Role, token
from gits_ml import modeling
from gits_ml.demo import FEATURES, PRODUCT_QUALITY, DemoConfig, DemoData, generate
from ml_data_api.app import create_app as create_ml_data_api
from ml_data_api.settings import load_settings as ml_data_api_settings
from monitoring_api.app import create_app
from monitoring_api.settings import Settings, load_settings
from monitoring_api.webhooks import IPAddress, parse_allowed_hosts
from queue_manager.app import create_app as create_queue_manager
from queue_manager.settings import load_settings as queue_manager_settings
from tests.conftest import LiveServer, free_port, private_store

SAMPLED_ROWS = 1300  # lab-sampled production rows, about one an hour
DRIFT_FROM_ROW = 500  # the drift knob turns chamber 3 hotter from this sampled row on
# History points look at the newest 500 rows, as by default: against the 2,100 training
# rows that is enough for drift distances (drift.MIN_EFFECTIVE_ROWS), whose scores the
# history tests follow. Smaller windows are judged by tests (p-values).
HISTORY_WINDOW = 500
BASE = DemoConfig(seed=10, history_hours=3000, production_minutes=60 * SAMPLED_ROWS)
DRIFTING = dataclasses.replace(BASE, drift_after_minute=60 * DRIFT_FROM_ROW, drift_shift=40)
DEMO = generate(BASE)
DRIFTED = generate(DRIFTING)
CHAMBER_3 = [f"T_data_3_{s}" for s in (1, 2, 3)]


def sampled(data: DemoData) -> pd.DataFrame:
    """The lab-sampled production readings, with their true quality."""
    return data.ground_truth.drop(columns=["available_at"])


@pytest.fixture(scope="session")
def model_file() -> bytes:
    """A real PyCaret pipeline (linear regression) trained on the demo's training split."""
    pipeline, _ = modeling.train(PRODUCT_QUALITY, DEMO.training, include=["lr"])
    return modeling.to_bytes(pipeline)


@pytest.fixture(scope="session")
def pipeline(model_file: bytes) -> Any:
    """The model, loaded as monitoring_api loads it."""
    return modeling.from_bytes(model_file)


@pytest.fixture(scope="session")
def apis(postgres_dsn: str) -> Iterator[dict[str, str]]:
    """ml_data_api and queue_manager, served on free ports for the whole session;
    queue_manager checks model uploads against this ml_data_api's use cases."""
    with LiveServer(create_ml_data_api(ml_data_api_settings())) as ml_data:
        settings = dataclasses.replace(
            private_store(queue_manager_settings()), ml_data_api_url=ml_data.url
        )
        with LiveServer(create_queue_manager(settings)) as qm:
            yield {"ml_data_api": ml_data.url, "queue_manager": qm.url}


def monitoring_settings(apis: dict[str, str], **changes: Any) -> Settings:
    """monitoring_api settings on the test database and the served APIs; no schedule."""
    base = dataclasses.replace(
        load_settings(),
        ml_data_api_url=apis["ml_data_api"],
        queue_manager_url=apis["queue_manager"],
        interval_seconds=0,
        window_rows=HISTORY_WINDOW,
        min_window_rows=30,
        # Pinned, so that no developer's .env changes what the tests expect.
        default_drift_share=0.5,
        default_feature_drift_score=None,
        default_anomaly_rate=0.1,
        # The tests' webhook receivers listen on loopback, which only an operator's
        # allow-list opens to webhooks.
        webhook_allowed_hosts=parse_allowed_hosts("127.0.0.1"),
    )
    return dataclasses.replace(base, **changes)


class Names:
    """A resolver of the tests' own: the names given and nothing else, so that no test
    asks the machine's DNS; it counts the look-ups."""

    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = {name: [ip_address(a) for a in found] for name, found in (names or {}).items()}
        self.asked: list[str] = []

    async def __call__(self, name: str, port: int) -> list[IPAddress]:
        self.asked.append(name)
        if name not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.names[name]


def hermetic(app: FastAPI, names: Names | None = None) -> FastAPI:
    """The app with its webhook names resolved by `names` (by default none resolves)."""
    app.state.watch.webhooks.resolve = names or Names()
    return app


@pytest.fixture
def app(apis: dict[str, str]) -> FastAPI:
    """A fresh monitoring_api application."""
    return hermetic(create_app(monitoring_settings(apis)))


@dataclass
class Stage:
    """The platform as a test sees it: register use cases, upload the model, put in
    production rows and their labels, all through the real APIs."""

    apis: dict[str, str]
    token: str
    pipeline: Any
    model_file: bytes

    def http(self, api: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.apis[api], timeout=60, headers={"Authorization": f"Bearer {self.token}"}
        )

    def use_case(self, prefix: str = "mon", *, upload: bool = True) -> UseCase:
        """A fresh demo use case with the demo's training and testing rows, the model
        uploaded as version 1 of an algorithm named after it, and a service bound to it
        (monitoring finds a use case's model through its services)."""
        use_case = PRODUCT_QUALITY.model_copy(update={"name": f"{prefix}_{uuid.uuid4().hex[:8]}"})
        self.register(use_case)
        self.insert(use_case, "training", DEMO.training)
        self.insert(use_case, "testing", DEMO.testing)
        if upload:
            with self.http("queue_manager") as qm:
                form = {
                    "name": use_case.name,
                    "use_case": use_case.name,
                    "task": "regression",
                    "features": json.dumps(FEATURES),
                }
                files = {"file": ("model.pkl", self.model_file)}
                qm.post("/queue_manager/algorithms", data=form, files=files).raise_for_status()
                binding = {"routing_key": f"mon.{use_case.name}", "algorithm_name": use_case.name}
                qm.put(
                    f"/queue_manager/services/svc_{use_case.name}", json=binding
                ).raise_for_status()
        return use_case

    def register(self, use_case: UseCase) -> None:
        with self.http("ml_data_api") as ml:
            body = use_case.model_dump(mode="json")
            ml.post("/ml_data_api/use_cases", json=body).raise_for_status()

    def insert(self, use_case: UseCase, table: str, frame: pd.DataFrame) -> None:
        with self.http("ml_data_api") as ml:
            url = f"/ml_data_api/use_cases/{use_case.name}/{table}/rows"
            ml.post(url, json={"rows": rows_from_frame(frame)}).raise_for_status()

    def produce(
        self, use_case: UseCase, readings: pd.DataFrame, *, model_version: str | None = None
    ) -> pd.DataFrame:
        """Production rows for these readings, predicted by the model as a worker would;
        returns them as stored (without labels)."""
        rows = readings[["message_id", "timestamp", *FEATURES]].assign(
            prediction=self.pipeline.predict(readings[FEATURES]),
            model_version=model_version or f"{use_case.name}:1",
        )
        self.insert(use_case, "production", rows)
        return rows

    def label(self, use_case: UseCase, readings: pd.DataFrame) -> None:
        """The ground truth of these readings arrives."""
        assert use_case.target is not None
        truth = rows_from_frame(readings[["message_id", use_case.target.name]])
        labels = [{"message_id": r["message_id"], "value": r[use_case.target.name]} for r in truth]
        with self.http("ml_data_api") as ml:
            url = f"/ml_data_api/use_cases/{use_case.name}/labels"
            ml.post(url, json={"labels": labels}).raise_for_status()


@pytest.fixture(scope="session")
def stage(apis, pipeline, model_file) -> Stage:
    """The served platform slice."""
    return Stage(apis, token(Role.admin), pipeline, model_file)


class Webhook:
    """A local HTTP server that records the JSON bodies POSTed to it (and their Host
    headers), and answers `status`, with a Location header when one is given."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.hosts: list[str | None] = []
        received, hosts, answer = self.received, self.hosts, status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                hosts.append(self.headers.get("Host"))
                self.send_response(answer)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on a free port."""
    with Webhook() as hook:
        yield hook


def nowhere() -> str:
    """The URL of a port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


class Listener:
    """A loopback port that accepts connections and then closes each at once
    (`hold=False`, a service that drops the request) or holds it unanswered."""

    def __init__(self, *, hold: bool) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/alerts"
        self.accepted = 0
        self._hold = hold
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            if self._hold:
                self._held.append(conn)
            else:
                conn.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._socket.close()
