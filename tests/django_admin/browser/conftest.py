"""A streaming platform for the browser tests, and a headless Chromium to look at it.

Every service runs as its own process, as `make run` starts it: ml_data_api,
queue_manager (on a fresh schema of the test database), monitoring_api (a history point
every few seconds on small windows), retraining_api (linear models), two worker
replicas, data_source publishing fast, the ground_truth_collector, and the admin
(`python -m django_admin`) with a superuser whose password the tests know. The use case
is the demo's definition under a name of its own, so nothing passes because a name is
the demo's. A poison message waits in the service's dead-letter queue, so the
dead-letter count has something to show.

Chromium is Debian's (scripts/ensure-browser.sh), driven by Playwright without its own
browser download. Locally a missing Chromium or Playwright skips the tests; under CI it
fails them, like a missing PostgreSQL.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from gits_common.clients import rows_from_frame
from gits_common.schemas import UseCase
from gits_ml import modeling
from gits_ml.demo import PRODUCT_QUALITY, generate
from tests.amqp_helpers import delete_service_queues, publish, wait_until
from tests.conftest import QM_SCHEMA_PREFIX, free_port, need_server
from tests.live_platform import Platform

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
BROWSER_PATH = os.environ.get("BROWSER_PATH", "/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the rest keep it off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ADMIN_USER = "browser-admin"
ADMIN_PASSWORD = f"pw-{uuid.uuid4().hex}"
DATA_SOURCE_RATE = 20  # messages a second: a history window fills in seconds
WORKERS = 2
# Settings of the whole slice: fast ground truth and monitoring on small windows.
PLATFORM_ENV = {
    "LOG_LEVEL": "INFO",
    "MONGODB_URL": "",
    "QUEUE_MANAGER_SCHEMA": f"{QM_SCHEMA_PREFIX}{uuid.uuid4().hex[:12]}",
    "DEMO_GROUND_TRUTH_EVERY": "5",
    "DEMO_DRIFT_AFTER_MINUTE": "",
    "GROUND_TRUTH_INTERVAL_SECONDS": "2",
    "GROUND_TRUTH_DELAY_SECONDS": "1",
    "MONITORING_INTERVAL_SECONDS": "4",
    # Windows and references large enough for drift distances (the heatmap's scores):
    # 500 readings against the 4,200 training rows count as 447 effective rows (>= 400).
    "MONITORING_WINDOW_ROWS": "500",
    "MONITORING_MIN_WINDOW_ROWS": "500",
    "MONITORING_MIN_ROWS": "30",
    "MONITORING_MIN_LABELLED": "5",
    # A retraining started from the admin compares linear models only, on one core.
    "RETRAINING_DEFAULT_MODELS": "lr",
    # Keep every job of the run: the poisoned message's failed job is among the first.
    "QUEUE_MANAGER_MEMORY_MAX_JOBS": "1000000",
    "WORKER_RETRY_BASE_DELAY": "0.2",
}


@dataclass(kw_only=True)
class Stack(Platform):
    """The running slice: where each service answers, the slice's names, and its
    processes' logs (`tests.live_platform.Platform` runs the processes)."""

    token: str
    amqp_url: str
    use_case: UseCase
    service: str
    routing_key: str
    idle_use_case: UseCase
    idle_service: str

    def http(self, api: str) -> httpx.Client:
        """A client of one API, with the bearer token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.urls[api], timeout=60, headers=headers)


def seed(stack: Stack, model: bytes) -> None:
    """Register the use case with the demo's training and testing rows, upload the model
    and bind the service to it; and beside them an idle use case and service whose names
    sort first, so that a dashboard shows the platform's own only when a user picks it."""
    use_case, demo = stack.use_case, generate()
    with stack.http("ml_data_api") as ml:
        for case in (use_case, stack.idle_use_case):
            ml.post("/ml_data_api/use_cases", json=case.model_dump(mode="json")).raise_for_status()
        for table, frame in (("training", demo.training), ("testing", demo.testing)):
            url = f"/ml_data_api/use_cases/{use_case.name}/{table}/rows"
            ml.post(url, json={"rows": rows_from_frame(frame)}).raise_for_status()
    with stack.http("queue_manager") as qm:
        for case, service, routing_key in (
            (use_case, stack.service, stack.routing_key),
            (stack.idle_use_case, stack.idle_service, f"{stack.routing_key}.idle"),
        ):
            form = {
                "name": case.name,
                "use_case": case.name,
                "task": case.task.value,
                "features": json.dumps(case.feature_names),
            }
            files = {"file": ("model.pkl", model)}
            qm.post("/queue_manager/algorithms", data=form, files=files).raise_for_status()
            binding = {"routing_key": routing_key, "algorithm_name": case.name}
            qm.put(f"/queue_manager/services/{service}", json=binding).raise_for_status()


def off_the_loop(function: Callable[..., Any], *args: Any) -> Any:
    """Call a helper that runs its own event loop, in a thread of its own: Playwright's
    sync API keeps a loop running in the test's thread, where asyncio.run refuses."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def poison(stack: Stack) -> None:
    """One message that can never succeed (no features): a failed job, a dead letter."""
    body = {"message_id": f"poison-{uuid.uuid4().hex[:6]}", "timestamp": "2025-01-01T00:00:00Z"}
    off_the_loop(publish, stack.amqp_url, stack.routing_key, [{**body, "features": {}}])


def start_services(stack: Stack, tmp: Path) -> None:
    """The APIs and the admin; they start while the test process trains the model."""
    port = {name: url.rsplit(":", 1)[1] for name, url in stack.urls.items()}
    stack.start("ml_data_api", "ml_data_api", ML_DATA_API_PORT=port["ml_data_api"])
    stack.start("queue_manager", "queue_manager", QUEUE_MANAGER_PORT=port["queue_manager"])
    stack.start("monitoring_api", "monitoring_api", MONITORING_API_PORT=port["monitoring_api"])
    stack.start(
        "retraining_api",
        "retraining_api",
        RETRAINING_API_PORT=port["retraining_api"],
        RETRAINING_ARTIFACTS_DIR=str(tmp / "retraining"),
    )
    stack.start(
        "django_admin",
        "django_admin",
        DJANGO_ADMIN_PORT=port["django_admin"],
        DJANGO_DB_PATH=str(tmp / "admin.sqlite3"),
        DJANGO_SECRET_KEY=f"browser-tests-{uuid.uuid4().hex}",
        DJANGO_SUPERUSER_USERNAME=ADMIN_USER,
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.invalid",
        DJANGO_STATIC_FROM_FINDERS="true",
        DJANGO_STATIC_ROOT=str(tmp / "static"),
    )


def start_stream(stack: Stack, tmp: Path) -> None:
    """Workers, the publisher and the ground truth."""
    for n in range(WORKERS):
        stack.start(f"worker-{n + 1}", "workers", SERVICE_NAME=stack.service)
    stack.start(
        "data_source",
        "data_source",
        "--loop",
        DATA_SOURCE_ROUTING_KEY=stack.routing_key,
        DATA_SOURCE_RATE=str(DATA_SOURCE_RATE),
    )
    stack.start(
        "ground_truth_collector",
        "ground_truth_collector",
        GROUND_TRUTH_USE_CASE=stack.use_case.name,
        GROUND_TRUTH_DEMO="product_quality",  # the demo's rows, under the stack's name
        GROUND_TRUTH_STATE_DIR=str(tmp / "ground_truth"),
    )


def slice_env(urls: dict[str, str]) -> dict[str, str]:
    """The environment of every process of the slice."""
    return {
        **os.environ,
        **PLATFORM_ENV,
        "ML_DATA_API_URL": urls["ml_data_api"],
        "QUEUE_MANAGER_URL": urls["queue_manager"],
        "MONITORING_API_URL": urls["monitoring_api"],
        "RETRAINING_API_URL": urls["retraining_api"],
    }


@pytest.fixture(scope="package")
def stack(
    postgres_dsn: str, rabbitmq_url: str, api_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The slice, streaming: predictions, jobs, labels and history points keep coming."""
    suffix = uuid.uuid4().hex[:6]
    urls = {
        name: f"http://127.0.0.1:{free_port()}"
        for name in (
            "ml_data_api",
            "queue_manager",
            "monitoring_api",
            "retraining_api",
            "django_admin",
        )
    }
    use_case = PRODUCT_QUALITY.model_copy(update={"name": f"line_{suffix}"})
    slice_ = Stack(
        urls=urls,
        token=api_token,
        amqp_url=rabbitmq_url,
        use_case=use_case,
        service=f"service_line_{suffix}",
        routing_key=f"gits.browser.{suffix}",
        env=slice_env(urls),
        idle_use_case=PRODUCT_QUALITY.model_copy(update={"name": f"a_idle_{suffix}"}),
        idle_service=f"a_idle_service_{suffix}",
    )
    tmp = tmp_path_factory.mktemp("platform")
    try:
        start_services(slice_, tmp)
        model = train(use_case)
        for name in ("ml_data_api", "queue_manager", "monitoring_api", "retraining_api"):
            slice_.wait_until_up(name, f"{urls[name]}/health")
        seed(slice_, model)
        poison(slice_)
        start_stream(slice_, tmp)
        slice_.wait_until_up("django_admin", f"{urls['django_admin']}/accounts/login/")
        yield slice_
    finally:
        slice_.stop_all()
        for service in (slice_.service, slice_.idle_service):
            off_the_loop(delete_service_queues, rabbitmq_url, service)


def train(use_case: UseCase) -> bytes:
    """A linear model of the demo, as a PyCaret pipeline file."""
    pipeline, _ = modeling.train(use_case, generate().training, include=["lr"])
    return modeling.to_bytes(pipeline)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium, driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        need_server("Playwright (pip install playwright)", exc)
    if not os.access(BROWSER_PATH, os.X_OK):
        need_server("Chromium (scripts/ensure-browser.sh)", FileNotFoundError(BROWSER_PATH))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=BROWSER_PATH, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def screenshots() -> Path:
    """Where the tests save what they saw."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# --- A logged-in page, and what a user does on a dashboard (shared by the test files) ---


@pytest.fixture
def page(chromium: Any, stack: Stack) -> Iterator[Any]:
    """A browser page of a user who logged in through the login form."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{stack.urls['django_admin']}/dashboards/main/")
    assert "/accounts/login/" in page.url  # sent to log in first
    page.fill("input[name=username]", ADMIN_USER)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.locator("form [type=submit]").first.click()
    assert urlparse(page.url).path == "/dashboards/main/"  # and then sent where it was going
    yield page
    context.close()


def open_dashboard(page: Any, stack: Stack, name: str) -> Any:
    """Open a dashboard page; the frame its Dash app runs in."""
    page.goto(f"{stack.urls['django_admin']}/dashboards/{name}/")
    frame = page.wait_for_selector("iframe").content_frame()
    frame.wait_for_selector(".js-plotly-plot", timeout=30_000)
    return frame


def poll(read: Callable[[], Any], ok: Callable[[Any], bool], *, timeout: float) -> Any:
    """The first result of `read()` that is `ok`, or AssertionError after `timeout`."""
    seen: list[Any] = []

    def check() -> bool:
        seen.append(read())
        return ok(seen[-1])

    wait_until(check, timeout=timeout, every=0.5)
    return seen[-1]


def shoot(page: Any, screenshots: Path, name: str) -> Path:
    """Save the whole page as test-artifacts/screenshots/<name>.png; its path."""
    path = screenshots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def choose(frame: Any, dropdown: str, value: str) -> None:
    """Pick `value` in a Dash dropdown as a user does: open it, type, press Enter."""
    wait_until(lambda: frame.inner_text(dropdown).strip(), timeout=30)  # options are in
    frame.click(f"{dropdown} .Select-control")
    search = frame.locator(f"{dropdown} input")
    search.press_sequentially(value)
    search.press("Enter")
    wait_until(lambda: value in frame.inner_text(dropdown), timeout=10)


# --- Use cases of other tasks beside the streaming one, seeded directly ---


def register_use_case(stack: Stack, case: UseCase, tables: dict[str, Any]) -> None:
    """Register `case` in ml_data_api with the rows of each table (name -> DataFrame)."""
    with stack.http("ml_data_api") as ml:
        ml.post("/ml_data_api/use_cases", json=case.model_dump(mode="json")).raise_for_status()
    for table, frame in tables.items():
        insert_rows(stack, case, table, frame)


def insert_rows(stack: Stack, case: UseCase, table: str, frame: Any) -> None:
    """Insert a DataFrame's rows into one of the use case's tables through ml_data_api."""
    with stack.http("ml_data_api") as ml:
        url = f"/ml_data_api/use_cases/{case.name}/{table}/rows"
        ml.post(url, json={"rows": rows_from_frame(frame)}).raise_for_status()


def bind_model(stack: Stack, case: UseCase, service: str, routing_key: str, model: bytes) -> None:
    """Upload `model` as the first version of an algorithm named as the use case, and bind
    `service` (on `routing_key`) to it in queue_manager."""
    form = {
        "name": case.name,
        "use_case": case.name,
        "task": case.task.value,
        "features": json.dumps(case.feature_names),
    }
    with stack.http("queue_manager") as qm:
        files = {"file": ("model.pkl", model)}
        qm.post("/queue_manager/algorithms", data=form, files=files).raise_for_status()
        binding = {"routing_key": routing_key, "algorithm_name": case.name}
        qm.put(f"/queue_manager/services/{service}", json=binding).raise_for_status()
