"""The admin under test: Django set up on a throw-away SQLite file, in front of a real
queue_manager (in-memory store, real RabbitMQ) and a real ml_data_api (real PostgreSQL),
both served on real ports. Settings are fixed here before Django reads them."""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import html
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import django
import httpx
import pytest

_TMP = tempfile.mkdtemp(prefix="gits-django-admin-tests-")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
os.environ.update(
    DJANGO_SETTINGS_MODULE="django_admin.settings",
    DJANGO_SECRET_KEY="test-secret-key-not-a-secret-0123456789abcdef",
    DJANGO_DB_PATH=f"{_TMP}/users.sqlite3",
    DJANGO_STATIC_ROOT=f"{_TMP}/static",
    DJANGO_MAX_UPLOAD_MB="1",
    DJANGO_SUPERUSER_PASSWORD="",
    DJANGO_API_TIMEOUT="30",
)
django.setup()

from django.conf import settings  # noqa: E402  (after django.setup)
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from django_admin.apis import reset_clients  # noqa: E402
from gits_common.schemas import Column, Task, UseCase  # noqa: E402
from ml_data_api.app import create_app as create_ml_data_api  # noqa: E402
from ml_data_api.settings import load_settings as ml_data_api_settings  # noqa: E402
from queue_manager.app import create_app as create_queue_manager  # noqa: E402
from queue_manager.settings import load_settings as queue_manager_settings  # noqa: E402
from tests.conftest import LiveServer  # noqa: E402
from tests.queue_manager.conftest import Broker  # noqa: E402

setup_test_environment()  # adds "testserver" to ALLOWED_HOSTS, keeps template contexts
call_command("migrate", interactive=False, verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)  # Dash's JS, served locally

OPERATOR = "operator"
FEATURES = ["temp_A", "temp_B", "humidity"]


def unique(prefix: str) -> str:
    """A name no other test (and no earlier run) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def point_admin_at(**urls: str) -> None:
    """Make the admin call these API base URLs from now on."""
    settings.GITS_API_URLS = {**settings.GITS_API_URLS, **urls}
    reset_clients()


@dataclass
class Platform:
    """The served APIs and a token-carrying look at them, to check what the admin did."""

    urls: dict[str, str]
    token: str

    def http(self, api: str) -> httpx.Client:
        """A client of one served API that sends the bearer token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.urls[api], headers=headers, timeout=30)

    def get(self, api: str, path: str, **params: Any) -> Any:
        """GET an API path; the decoded answer (404 as None)."""
        with self.http(api) as http:
            response = http.get(path, params=params)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version queue_manager stores of an algorithm."""
        found: list[dict[str, Any]] = self.get(
            "queue_manager", "/queue_manager/algorithms", name=name
        )
        return found

    def upload(self, name: str, use_case: UseCase, content: bytes = b"model") -> dict[str, Any]:
        """Upload a model straight to queue_manager (test setup, not the admin)."""
        form = {
            "name": name,
            "use_case": use_case.name,
            "task": use_case.task.value,
            "features": json.dumps(use_case.feature_names),
        }
        with self.http("queue_manager") as http:
            response = http.post(
                "/queue_manager/algorithms", data=form, files={"file": ("m.pkl", content)}
            )
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def bind(self, service: str, algorithm: str, version: int | str = "latest") -> None:
        """Bind a service straight in queue_manager (test setup)."""
        body = {
            "routing_key": f"{service}.data",
            "algorithm_name": algorithm,
            "algorithm_version": version,
        }
        with self.http("queue_manager") as http:
            http.put(f"/queue_manager/services/{service}", json=body).raise_for_status()


@pytest.fixture(scope="session")
def platform(postgres_dsn: str, rabbitmq_url: str, api_token: str) -> Iterator[Platform]:
    """queue_manager and ml_data_api served for the session, and the admin pointed at them."""
    queue_manager = create_queue_manager(
        dataclasses.replace(queue_manager_settings(), mongodb_url="")
    )
    with (
        LiveServer(queue_manager) as qm,
        LiveServer(create_ml_data_api(ml_data_api_settings())) as ml_data,
    ):
        urls = {"queue_manager": qm.url, "ml_data_api": ml_data.url}
        point_admin_at(**urls)
        yield Platform(urls, api_token)


@pytest.fixture(scope="session")
def api_token() -> str:
    """The bearer token the served APIs expect (session-wide, for the session fixtures)."""
    return os.environ["GITS_API_TOKEN"]


@pytest.fixture
def admin_urls(platform: Platform) -> Iterator[Platform]:
    """The platform, with the admin pointed back at it after a test that moved it."""
    yield platform
    point_admin_at(**platform.urls)


@pytest.fixture(scope="session")
def use_case(platform: Platform) -> UseCase:
    """A regression use case registered in ml_data_api."""
    case = UseCase(
        name=unique("dj"),
        task=Task.regression,
        features=[Column(name=n) for n in FEATURES],
        target=Column(name="quality"),
        time_column="ts",
    )
    with platform.http("ml_data_api") as http:
        http.post("/ml_data_api/use_cases", json=case.model_dump(mode="json")).raise_for_status()
    return case


@pytest.fixture(scope="session")
def operator() -> Any:
    """A logged-in-able user of the admin (not a superuser)."""
    users = get_user_model()
    user, _ = users.objects.get_or_create(username=OPERATOR)
    return user


@pytest.fixture
def browser(operator: Any) -> Client:
    """A browser logged in as the operator."""
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def anonymous() -> Client:
    """A browser nobody logged in with."""
    return Client()


@pytest.fixture
def broker(rabbitmq_url: str) -> Iterator[Broker]:
    """The real broker; the queues of the test's services are deleted afterwards."""
    look = Broker(rabbitmq_url)
    yield look
    look.cleanup()


def sha256(content: bytes) -> str:
    """The hex SHA-256 of some bytes."""
    return hashlib.sha256(content).hexdigest()


def text(response: Any) -> str:
    """A Django test response's body as the text a user reads (entities decoded)."""
    body: bytes = response.content
    return html.unescape(body.decode())
