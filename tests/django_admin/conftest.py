"""The admin under test: Django set up on a throw-away SQLite file, in front of a real
queue_manager (in-memory store, real RabbitMQ), a real ml_data_api (real PostgreSQL) and,
for the pages that need it, a real retraining_api, all served on real ports. Settings are
fixed here before Django reads them."""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import html
import itertools
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import django
import httpx
import pytest
from fastapi import FastAPI

_TMP = tempfile.mkdtemp(prefix="gits-django-admin-tests-")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
# The three role tokens (each at least 32 characters, all different), unless the suite
# already set them: the served APIs check them, the admin sends two of them.
for _setting, _role in (
    ("GITS_ADMIN_TOKEN", "admin"),
    ("GITS_RUNTIME_TOKEN", "runtime"),
    ("GITS_READ_TOKEN", "read"),
):
    os.environ.setdefault(_setting, f"test-{_role}-token-not-a-secret-0123456789abcdef")
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
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from django_admin.apis import reset_clients  # noqa: E402
from django_admin.roles import MANAGERS_GROUP  # noqa: E402
from gits_common.schemas import Column, Task, UseCase  # noqa: E402
from ml_data_api.app import create_app as create_ml_data_api  # noqa: E402
from ml_data_api.settings import load_settings as ml_data_api_settings  # noqa: E402
from monitoring_api.app import create_app as create_monitoring_api  # noqa: E402
from monitoring_api.settings import load_settings as monitoring_api_settings  # noqa: E402
from queue_manager.app import create_app as create_queue_manager  # noqa: E402
from queue_manager.settings import load_settings as queue_manager_settings  # noqa: E402
from queue_manager.store import Session  # noqa: E402
from retraining_api.app import create_app as create_retraining_api  # noqa: E402
from retraining_api.settings import Settings as RetrainingSettings  # noqa: E402
from retraining_api.settings import load_settings as retraining_settings  # noqa: E402
from tests.conftest import LiveServer, private_store  # noqa: E402
from tests.model_files import for_use_case  # noqa: E402
from tests.queue_manager.conftest import Broker  # noqa: E402

setup_test_environment()  # adds "testserver" to ALLOWED_HOSTS, keeps template contexts
call_command("migrate", interactive=False, verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)  # Dash's JS, served locally

OPERATOR = "operator"  # may manage models (in the "Model managers" group)
VIEWER = "viewer"  # an operator without that permission: reads only
FEATURES = ["temp_A", "temp_B", "humidity"]


# Seeds of the model files uploaded for test setup: each upload gets new bytes.
_SEEDS = itertools.count(1000)


def unique(prefix: str) -> str:
    """A name no other test (and no earlier run) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def point_admin_at(**urls: str) -> None:
    """Make the admin call these API base URLs from now on."""
    settings.GITS_API_URLS = {**settings.GITS_API_URLS, **urls}
    reset_clients()


@dataclass
class Platform:
    """The served APIs and a look at them with the admin token, to set up records and to
    check what the admin did."""

    urls: dict[str, str]
    token: str
    queue_manager_app: FastAPI

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

    def upload(
        self,
        name: str,
        use_case: UseCase,
        content: bytes | None = None,
        *,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Upload a model straight to queue_manager (test setup, not the admin); without
        `content`, a real model file of the use case, new bytes each time."""
        form = {
            "name": name,
            "use_case": use_case.name,
            "task": use_case.task.value,
            "features": json.dumps(use_case.feature_names),
        }
        if description is not None:
            form["description"] = description
        if content is None:
            content = for_use_case(use_case, seed=next(_SEEDS))
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

    def lose_version(self, name: str, version: int) -> None:
        """Remove an algorithm version from queue_manager's store behind its back, as a
        lost or hand-edited store would: the API refuses to delete a version in use, so a
        service bound to it is left with a version that is gone."""
        manager = self.queue_manager_app.state.queue_manager

        def lose(session: Session) -> None:
            found = session.find_algorithm(name=name, version=version)
            assert found is not None, f"{name} version {version} is not in queue_manager's store"
            session.delete_algorithm(algorithm=found)

        manager.db.run(lose)


@pytest.fixture(scope="session")
def platform(postgres_dsn: str, rabbitmq_url: str, api_token: str) -> Iterator[Platform]:
    """queue_manager and ml_data_api served for the session, and the admin pointed at them;
    queue_manager checks uploads against the use cases of this ml_data_api."""
    with LiveServer(create_ml_data_api(ml_data_api_settings())) as ml_data:
        settings = dataclasses.replace(
            private_store(queue_manager_settings()), ml_data_api_url=ml_data.url
        )
        queue_manager = create_queue_manager(settings)
        with LiveServer(queue_manager) as qm:
            urls = {"queue_manager": qm.url, "ml_data_api": ml_data.url}
            point_admin_at(**urls)
            yield Platform(urls, api_token, queue_manager)


@dataclass(frozen=True)
class Retraining:
    """A served retraining_api: its address and settings (where challengers are kept)."""

    url: str
    settings: RetrainingSettings

    @property
    def artifacts_dir(self) -> Path:
        """Where retraining_api keeps challengers and explainer pages."""
        return self.settings.artifacts_dir


@pytest.fixture(scope="session")
def retraining(
    platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Retraining]:
    """retraining_api on the platform's APIs, linear models only, with the admin pointed
    at it; its job processes start (and import PyCaret) once for the session."""
    settings = dataclasses.replace(
        retraining_settings(),
        ml_data_api_url=platform.urls["ml_data_api"],
        queue_manager_url=platform.urls["queue_manager"],
        artifacts_dir=Path(tmp_path_factory.mktemp("artifacts")),
        default_models=("lr",),
        n_jobs=1,  # no joblib worker pool outliving the job processes; lean on 2 cores
    )
    with LiveServer(create_retraining_api(settings)) as server:
        point_admin_at(retraining_api=server.url)
        yield Retraining(server.url, settings)


@pytest.fixture(scope="session")
def api_token() -> str:
    """The admin role's bearer token, which test setup writes with (session-wide, for the
    session fixtures)."""
    return os.environ["GITS_ADMIN_TOKEN"]


@pytest.fixture
def admin_urls(platform: Platform) -> Iterator[Platform]:
    """The platform, with the admin pointed back at it after a test that moved it."""
    yield platform
    point_admin_at(**platform.urls)


def register(platform: Platform, prefix: str) -> UseCase:
    """A fresh regression use case (FEATURES, target quality, time ts) registered in
    ml_data_api, named `prefix_<random>`."""
    case = UseCase(
        name=unique(prefix),
        task=Task.regression,
        features=[Column(name=n) for n in FEATURES],
        target=Column(name="quality"),
        time_column="ts",
    )
    with platform.http("ml_data_api") as http:
        http.post("/ml_data_api/use_cases", json=case.model_dump(mode="json")).raise_for_status()
    return case


@pytest.fixture(scope="session")
def use_case(platform: Platform) -> UseCase:
    """A regression use case registered in ml_data_api."""
    return register(platform, "dj")


@pytest.fixture(scope="session")
def operator() -> Any:
    """A user of the admin who may manage models (in the "Model managers" group), not a
    superuser."""
    users = get_user_model()
    user, _ = users.objects.get_or_create(username=OPERATOR)
    user.groups.add(Group.objects.get(name=MANAGERS_GROUP))
    return user


@pytest.fixture
def browser(operator: Any) -> Client:
    """A browser logged in as the operator who may manage models."""
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture(scope="session")
def viewer() -> Any:
    """A user of the admin without the permission to manage models: reads only."""
    user, _ = get_user_model().objects.get_or_create(username=VIEWER)
    return user


@pytest.fixture
def viewer_browser(viewer: Any) -> Client:
    """A browser logged in as the operator who may only read."""
    client = Client()
    client.force_login(viewer)
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


# The filled use case's rows: ROWS training readings a minute apart from T0, and as many
# production readings a day later.
T0 = datetime(2025, 3, 1, tzinfo=UTC)
ROWS = 60


@pytest.fixture(scope="session")
def monitoring(platform: Platform) -> Iterator[str]:
    """monitoring_api served on the platform's ml_data_api, with no schedule."""
    settings = dataclasses.replace(
        monitoring_api_settings(),
        ml_data_api_url=platform.urls["ml_data_api"],
        queue_manager_url=platform.urls["queue_manager"],
        interval_seconds=0,
        min_rows=30,
    )
    with LiveServer(create_monitoring_api(settings)) as server:
        point_admin_at(monitoring_api=server.url)
        yield server.url


def readings(n: int, *, start: datetime, production: bool) -> list[dict[str, object]]:
    """n readings a minute apart; production rows carry a message id and a prediction."""
    out: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "temp_A": 200.0 + i % 11,
            "temp_B": 300.0 + i % 7,
            "humidity": 10.0 + i % 3,
            "quality": 350.0 + i % 5,
        }
        if production:
            row |= {"message_id": unique("m"), "prediction": 351.0}
        out.append(row)
    return out


@pytest.fixture(scope="session")
def filled(platform: Platform, use_case: UseCase) -> UseCase:
    """The use case with training rows and later production rows."""
    base = f"/ml_data_api/use_cases/{use_case.name}"
    with platform.http("ml_data_api") as http:
        training = readings(ROWS, start=T0, production=False)
        http.post(f"{base}/training/rows", json={"rows": training}).raise_for_status()
        production = readings(ROWS, start=T0 + timedelta(days=1), production=True)
        http.post(f"{base}/production/rows", json={"rows": production}).raise_for_status()
    return use_case
