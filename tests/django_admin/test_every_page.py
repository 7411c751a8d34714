"""Every page of the admin, walked from its URL configuration, opened with every kind of
record the platform holds: it answers what it means to (200, its redirect, 405 for an
action that only takes a POST, 409 for a dashboard still being built), never a 500.

The records come from the real APIs: algorithms with and without a description, services
bound to `latest`, to a pinned version and to a version that is gone, retraining jobs in
every state with and without promotion, promotions and rollbacks made by retraining_api,
and explainers of a model version and of a job's challenger in every state. Retraining
jobs are slow to run for real, so they are written straight into retraining_api's table
(through its own store functions, with the result its jobs write) and their challengers
into its artifacts folder; promotion, rollback and the two finished explainers are then
made by retraining_api itself, and the explainers' other states are copies of those
real requests."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg2
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, reverse
from joblib.externals.loky import get_reusable_executor

from gits_common.schemas import Column, Task, UseCase
from gits_ml import modeling
from retraining_api import store
from retraining_api.artifacts import Artifacts
from retraining_api.schemas import JobKind
from tests.django_admin.conftest import (
    FEATURES,
    Platform,
    Retraining,
    point_admin_at,
    text,
    unique,
)
from tests.django_admin.test_login import named_patterns
from tests.django_admin.test_roles import ACTIONS
from tests.queue_manager.conftest import Broker

# Trains a PyCaret model and builds explainer dashboards; the overview and alerts read
# monitoring_api.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("monitoring")]

JOB_SECONDS = 300
ROWS = 40
T0 = datetime(2025, 3, 1, tzinfo=UTC)
# Pages that only take a POST (an action, then a redirect): a GET is refused with 405.
POST_ONLY = ACTIONS | {"logout"}
# Pages that answer a file, not a page (for managers only).
FILES = {"algorithm_download"}
# Pages that redirect by design.
REDIRECTS: dict[str, str] = {}
# URL namespaces that are not the operators' pages: Django's user admin (checked for no
# 500 only) and django-plotly-dash's endpoints (tests/django_admin/test_login.py).
FOREIGN = ("admin:", "the_django_plotly_dash:")
CHAMPION_RESULTS = {"Model": "Linear Regression", "MAE": 0.9, "MSE": 1.3, "RMSE": 1.14, "R2": 0.5}
CHALLENGER_RESULTS = {"Model": "Ridge Regression", "MAE": 0.8, "MSE": 1.1, "RMSE": 1.05, "R2": 0.6}


@dataclass
class Visit:
    """A page to open, what it must answer, and words it must show."""

    url: str
    status: int = 200
    shows: list[str] = field(default_factory=list)


@dataclass
class Records:
    """What the module made, by kind."""

    use_case: UseCase
    algorithms: dict[str, str] = field(default_factory=dict)  # kind -> name
    versions: list[tuple[str, int]] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # kind -> name
    jobs: dict[str, int] = field(default_factory=dict)  # kind -> retraining job id
    explainers: dict[str, int] = field(default_factory=dict)  # "<target> <status>" -> id
    explained_job: int = 0  # the retraining job whose challenger is explained

    def explainer_status(self, kind: str) -> str:
        """The status of an explainer, from its kind."""
        return kind.split()[-1]


def explainable_model(use_case: UseCase) -> Any:
    """A PyCaret pipeline of the use case (its challengers are such pipelines)."""
    rows = np.random.default_rng(3).normal(size=(60, len(FEATURES)))
    frame = pd.DataFrame(rows, columns=FEATURES)
    frame["quality"] = frame.sum(axis=1)
    pipeline, _ = modeling.train(use_case, frame, include=["lr"], fold=2)
    get_reusable_executor().shutdown(wait=True)  # PyCaret leaves joblib workers idling
    return pipeline


def model_file(pipeline: Any, tag: str) -> bytes:
    """The pipeline's model file, its bytes (and so its checksum) made distinct by the
    tag: retraining_api builds one explainer per model checksum and rows."""
    tagged = copy.copy(pipeline)
    tagged.gits_test_tag = tag
    return modeling.to_bytes(tagged)


def finished_result(
    sha256: str, *, champion: str | None, decision: dict[str, Any] | None
) -> dict[str, Any]:
    """A retraining job's result as retraining_api's jobs write it (retraining_api.jobs)."""
    return {
        "retrained_model_results": CHALLENGER_RESULTS,
        "previous_model_results": CHAMPION_RESULTS if champion else None,
        "champion": champion,
        "champion_error": None,
        "unscored": {"challenger": {}, "champion": {}},
        "metric": "MAE",
        "higher_is_better": False,
        "models": ["lr", "ridge"],
        "training_rows": 900,
        "holdout_rows": 300,
        "holdout": {"testing": 250, "production": 50},
        "leaderboard": [CHALLENGER_RESULTS | {"TT (Sec)": 0.1}, CHAMPION_RESULTS],
        "challenger_sha256": sha256,
        "training_seconds": 3.2,
        "decision": decision,
        "promotion": None,
    }


class Jobs:
    """retraining_api's job table, written as its own code writes it."""

    def __init__(self, dsn: str, use_case: str) -> None:
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self.use_case = use_case

    def insert(
        self, kind: JobKind, request: dict[str, Any], *, service: str | None, status: str
    ) -> int:
        """A job in the given state: queued, running, failed (or finished, by `finish`)."""
        job = store.insert_job(
            conn=self.conn,
            kind=kind,
            use_case=self.use_case,
            service=service,
            request=request,
            requested_by="operator",
        )
        assert job is not None
        if status in ("running", "failed", "finished"):
            store.set_progress(conn=self.conn, job_id=job.id, stage="comparing models", percent=40)
        if status == "failed":
            reason = "too little data: 12 training rows, at least 50 needed"
            store.fail_job(conn=self.conn, job_id=job.id, error=reason)
        return job.id

    def finish(self, job_id: int, result: dict[str, Any]) -> None:
        """Mark a job finished with its result."""
        store.finish_job(conn=self.conn, job_id=job_id, result=result)


def api(platform: Platform, retraining: Retraining, method: str, path: str, **kw: Any) -> Any:
    """Call retraining_api with the platform's token; the decoded answer."""
    headers = {"Authorization": f"Bearer {platform.token}"}
    with httpx.Client(base_url=retraining.url, headers=headers, timeout=60) as http:
        response = http.request(method, path, **kw)
    assert response.is_success, response.text
    return response.json()


def wait_for(platform: Platform, retraining: Retraining, job_id: int) -> dict[str, Any]:
    """An explainer job once it is finished or failed."""
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        job: dict[str, Any] = api(
            platform, retraining, "GET", f"/retraining_api/explainers/{job_id}"
        )
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(1)
    raise AssertionError(f"explainer {job_id} still running after {JOB_SECONDS} s")


@pytest.fixture(scope="module")
def records(
    platform: Platform, retraining: Retraining, postgres_dsn: str, rabbitmq_url: str
) -> Iterator[Records]:
    """Every kind of record, made as described at the top of this module."""
    point_admin_at(retraining_api=retraining.url)  # another module may have moved it
    use_case = UseCase(
        name=unique("djp"),
        task=Task.regression,
        features=[Column(name=n) for n in FEATURES],
        target=Column(name="quality"),
        time_column="ts",
    )
    made = Records(use_case)
    broker = Broker(rabbitmq_url)
    _use_case_with_rows(platform, use_case)
    model = explainable_model(use_case)
    _algorithms_and_services(platform, made, broker, model_file(model, "uploaded"))
    _retraining_jobs(platform, retraining, made, postgres_dsn, model)
    _explainers(platform, retraining, made, postgres_dsn)
    yield made
    with platform.http("queue_manager") as http:
        for service in made.services.values():
            http.delete(f"/queue_manager/services/{service}")
    broker.cleanup()


def _use_case_with_rows(platform: Platform, use_case: UseCase) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for i in range(ROWS):
        values = dict(zip(FEATURES, rng.normal(size=len(FEATURES)).tolist(), strict=True))
        rows.append({"ts": (T0 + timedelta(minutes=i)).isoformat(), **values, "quality": 1.0})
    base = f"/ml_data_api/use_cases/{use_case.name}"
    with platform.http("ml_data_api") as http:
        http.post(
            "/ml_data_api/use_cases", json=use_case.model_dump(mode="json")
        ).raise_for_status()
        http.post(f"{base}/testing/rows", json={"rows": rows}).raise_for_status()


def _algorithms_and_services(
    platform: Platform, made: Records, broker: Broker, model: bytes
) -> None:
    use_case = made.use_case
    described, plain = unique("described"), unique("plain")
    platform.upload(described, use_case, model, description="trained on the spring data")
    platform.upload(described, use_case, description="the summer retrain")
    platform.upload(plain, use_case)
    platform.upload(plain, use_case)
    made.algorithms = {"with a description": described, "without a description": plain}
    made.services = {
        kind: broker.service_name() for kind in ("latest", "pinned", "gone", "champion")
    }
    platform.bind(made.services["latest"], described, "latest")
    platform.bind(made.services["pinned"], described, 2)
    platform.bind(made.services["gone"], plain, 1)
    platform.lose_version(plain, 1)
    platform.bind(made.services["champion"], described, 1)


def _retraining_jobs(
    platform: Platform, retraining: Retraining, made: Records, dsn: str, model: Any
) -> None:
    jobs, artifacts = Jobs(dsn, made.use_case.name), Artifacts(retraining.artifacts_dir)
    champion = made.services["champion"]
    champion_label = f"{made.algorithms['with a description']}:1"
    request: dict[str, Any] = {
        "use_case": made.use_case.name,
        "service": champion,
        "models": ["lr", "ridge"],
    }
    for status in ("queued", "running", "failed"):
        made.jobs[status] = jobs.insert(
            JobKind.retraining, request, service=champion, status=status
        )
    kept = {"promoted": False, "reason": "challenger MAE 0.8 does not beat 0.9 by 20%"}
    won = {"promoted": True, "reason": "challenger MAE 0.8 beats champion 0.9 by 1%"}
    finished = {
        "finished without a champion": (None, None, None),
        "finished, champion kept": (champion, champion_label, kept),
        "finished, promoted": (champion, champion_label, None),
        "finished, promoted by itself": (champion, champion_label, won),
    }
    for kind, (service, label, decision) in finished.items():
        job_request = request | {"service": service, "auto_promote": decision is not None}
        job_id = jobs.insert(JobKind.retraining, job_request, service=service, status="finished")
        challenger = model_file(model, f"challenger {job_id}")
        artifacts.write(artifacts.challenger(job_id), challenger)
        result = finished_result(modeling.sha256(challenger), champion=label, decision=decision)
        jobs.finish(job_id, result)
        made.jobs[kind] = job_id
    # Promotions and a rollback, by retraining_api itself.
    actor = {"json": {"requested_by": "operator"}}
    promoted = made.jobs["finished, promoted"]
    api(platform, retraining, "POST", f"/retraining_api/jobs/{promoted}/promote", **actor)
    api(platform, retraining, "POST", f"/retraining_api/services/{champion}/rollback", **actor)
    by_itself = made.jobs["finished, promoted by itself"]
    api(platform, retraining, "POST", f"/retraining_api/jobs/{by_itself}/promote", **actor)
    made.explained_job = promoted


def _explainers(platform: Platform, retraining: Retraining, made: Records, dsn: str) -> None:
    jobs = Jobs(dsn, made.use_case.name)
    targets: dict[str, dict[str, Any]] = {
        "model version": {"model_name": made.algorithms["with a description"], "model_version": 1},
        "challenger": {"job_id": made.explained_job},
    }
    for target, names in targets.items():
        body = names | {"data": "testing", "max_rows": 10, "requested_by": "operator"}
        started = api(platform, retraining, "POST", "/retraining_api/explainers", json=body)
        done = wait_for(platform, retraining, started["id"])
        assert done["status"] == "finished", done
        made.explainers[f"{target} finished"] = done["id"]
        for status in ("queued", "running", "failed"):
            made.explainers[f"{target} {status}"] = jobs.insert(
                JobKind.explainer, done["request"], service=None, status=status
            )


def visits(name: str, pattern: URLPattern, made: Records) -> list[Visit]:
    """The pages of one named URL, with every record it can show."""
    params = set(pattern.pattern.regex.groupindex)
    if not params:
        return [_plain_visit(name, made)]
    if name in ("algorithm", "algorithm_delete", "algorithm_download"):
        versions = [
            (n, 1 if n == made.algorithms["with a description"] else 2)
            for n in made.algorithms.values()
        ]
        return [
            _visit(name, {"name": n, "version": v} if name != "algorithm" else {"name": n}, [n])
            for n, v in versions
        ]
    if name in ("service", "service_bind", "service_delete"):
        return [
            _visit(
                name,
                {"name": s},
                ["the bound version is gone"] if kind == "gone" and name == "service" else [s],
            )
            for kind, s in made.services.items()
        ]
    if name == "service_rollback":
        return [_visit(name, {"service": s}) for s in made.services.values()]
    if name in ("retraining_job", "job_promote", "job_explain"):
        return [_job_visit(name, kind, job_id) for kind, job_id in made.jobs.items()]
    if name in ("explainer", "explainer_page"):
        return [
            _explainer_visit(name, kind, job_id, made) for kind, job_id in made.explainers.items()
        ]
    if name in ("alert_acknowledge", "alert_retrain"):
        ids = {"alert_id": 1} if name == "alert_acknowledge" else {}
        return [_visit(name, {"use_case": made.use_case.name, **ids})]
    raise AssertionError(
        f"page {name!r} takes {sorted(params)}: give this test records for it, so that it "
        "is opened with every kind of record it can show"
    )


def _visit(name: str, kwargs: dict[str, Any], shows: list[str] | None = None) -> Visit:
    url = reverse(name, kwargs=kwargs)
    if name in POST_ONLY or name in FILES:
        return Visit(url, 405 if name in POST_ONLY else 200)
    return Visit(url, 200, shows or [])


def _plain_visit(name: str, made: Records) -> Visit:
    url = reverse(name)
    if name in REDIRECTS:
        return Visit(url, 302)
    if name in POST_ONLY:
        return Visit(url, 405)
    shows: dict[str, list[str]] = {
        "algorithms": list(made.algorithms.values()),
        "services": [*made.services.values(), "gone"],
        "retraining": [f"#{job_id}" for job_id in made.jobs.values()],
        "promotions": ["promote", "rollback", made.services["champion"]],
        "explainers": [f'href="/retraining/explainers/{i}/"' for i in made.explainers.values()]
        + [f"retraining job #{made.explained_job}"],
    }
    return Visit(url, 200, shows.get(name, []))


def _job_visit(name: str, kind: str, job_id: int) -> Visit:
    shows = {
        "finished, promoted": ["Promoted", "Champion against challenger"],
        "finished, promoted by itself": ["Decision: promoted", "Promoted"],
        "finished, champion kept": ["champion kept", "Promote the challenger"],
        "failed": ["too little data"],
    }
    return _visit(name, {"job_id": job_id}, shows.get(kind, [f"#{job_id}"]))


def _explainer_visit(name: str, kind: str, job_id: int, made: Records) -> Visit:
    status = made.explainer_status(kind)
    url = reverse(name, kwargs={"job_id": job_id})
    if name == "explainer_page":
        return Visit(url, 200 if status == "finished" else 409)
    shows = [status]
    if kind.startswith("challenger"):
        shows.append(f"challenger of retraining job {made.explained_job}")
    return Visit(url, 200, shows)


def site_pages() -> list[tuple[str, URLPattern]]:
    """Every named page of the operators' site, the dashboards' pages included."""
    return [(n, p) for n, p in named_patterns() if not n.startswith(FOREIGN)]


@pytest.fixture(scope="module")
def superuser_browser() -> Client:
    """A browser logged in as a superuser, who may open every page (Django's user admin
    too)."""
    user, _ = get_user_model().objects.get_or_create(
        username="every-page-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    return client


def test_the_walk_covers_the_pages_with_records() -> None:
    names = {name for name, _ in site_pages()}
    assert {"algorithm", "service", "retraining_job", "explainer", "explainer_page"} <= names
    assert {"dashboards:main", "monitoring_report", "algorithm_upload"} <= names


@pytest.mark.parametrize(("name", "pattern"), site_pages(), ids=[n for n, _ in site_pages()])
def test_every_page_with_every_record_answers_as_meant(
    superuser_browser: Client, records: Records, name: str, pattern: URLPattern
) -> None:
    failures = []
    for visit in visits(name, pattern, records):
        response = superuser_browser.get(visit.url)
        page = (
            b"".join(response.streaming_content).decode("latin-1")
            if name in FILES
            else text(response)
        )
        if response.status_code != visit.status:
            failures.append(f"{visit.url} answered {response.status_code}, not {visit.status}")
            continue
        if visit.status == 302 and response["Location"] != REDIRECTS[name]:
            failures.append(f"{visit.url} redirects to {response['Location']}")
        readable = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
        failures += [
            f"{visit.url} does not show {w!r}"
            for w in visit.shows
            if w not in page and w not in readable
        ]
    assert failures == []


# For an operator without the permission to manage models: the forms that make a change
# are refused (403 in words), and no page shows a button or link that makes one.
# Model files too: reading one needs more than the read token (the runtime role).
FORMS = {"algorithm_upload", "service_new", "service_bind", "retraining_start", *FILES}
ACCOUNT = {"login", "password_change"}  # every user's own forms
CHANGE_MARKS = re.compile(
    r"/algorithms/upload/|/delete/|/services/new/|/bind/|/retraining/start/|/promote/"
    r'|/rollback/|/explain/|/file/|<form method="post" class="narrow"'
)


@pytest.mark.parametrize(("name", "pattern"), site_pages(), ids=[n for n, _ in site_pages()])
def test_every_page_with_every_record_for_an_operator_without_the_permission(
    viewer_browser: Client, records: Records, name: str, pattern: URLPattern
) -> None:
    failures = []
    for visit in visits(name, pattern, records):
        response = viewer_browser.get(visit.url)
        page = text(response)
        expected = 403 if name in FORMS else visit.status
        if response.status_code != expected:
            failures.append(f"{visit.url} answered {response.status_code}, not {expected}")
            continue
        if expected == 403 and "Model managers" not in page:
            failures.append(f"{visit.url} refused without saying how to get the permission")
        marks = sorted(set(CHANGE_MARKS.findall(page)))
        if marks and name not in ACCOUNT:
            failures.append(f"{visit.url} shows what only managers may do: {marks}")
    assert failures == []


def test_a_manager_sees_promote_roll_back_and_explain(browser: Client, records: Records) -> None:
    # The operator in the "Model managers" group, on a finished job that was not promoted
    page = text(browser.get(f"/retraining/jobs/{records.jobs['finished, champion kept']}/"))
    for action in ("/promote/", "/rollback/", "/explain/"):
        assert action in page


def test_filtered_and_prefilled_pages_answer(superuser_browser: Client, records: Records) -> None:
    described = records.algorithms["with a description"]
    for url in (
        f"/retraining/promotions/?service={records.services['champion']}",
        f"/algorithms/upload/?name={described}",
        "/monitoring/reports/",
        f"/algorithms/?use_case={records.use_case.name}",
        f"/services/?use_case={records.use_case.name}",
        f"/retraining/?use_case={records.use_case.name}",
        f"/retraining/start/?use_case={records.use_case.name}",
        f"/algorithms/compare/?first={described}:1&second={described}:2",
    ):
        assert superuser_browser.get(url).status_code == 200, url


def test_the_user_admin_never_answers_500(superuser_browser: Client, records: Records) -> None:
    user_id = get_user_model().objects.get(username="every-page-admin").pk
    samples = {"object_id": str(user_id), "app_label": "auth", "id": str(user_id)}
    for name, pattern in named_patterns():
        if not name.startswith("admin:"):
            continue
        params = set(pattern.pattern.regex.groupindex)
        try:
            url = reverse(name, kwargs={p: samples.get(p, "1") for p in params})
        except NoReverseMatch:  # a parameter this walk has no sample for
            continue
        status = superuser_browser.get(url).status_code
        assert status < 500, f"{url} answered {status}"
