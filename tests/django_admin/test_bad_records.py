"""A record an API answers with a field missing, null or of another type never makes a
page answer 500: the page shows what the record has and says what it lacks, and the
other records on the page are shown as usual. The APIs here are one stand-in server that
answers whatever records a test sets, good ones beside damaged ones."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_admin.apis import API_NAMES
from django_admin.site.bindings import SERVICE_FIELDS
from django_admin.site.catalog import VERSION_FIELDS
from django_admin.site.records import Field
from django_admin.site.retraining import EXPLAINER_FIELDS, PROMOTION_FIELDS, RETRAINING_FIELDS
from tests.conftest import LiveServer
from tests.django_admin.conftest import point_admin_at, text

AT = "2025-03-01T12:00:00+00:00"
SHA = "ab" * 32
USE_CASE: dict[str, Any] = {
    "name": "pumps",
    "task": "regression",
    "features": [{"name": "vibration", "type": "float"}, {"name": "rpm", "type": "float"}],
    "target": {"name": "flow", "type": "float"},
    "time_column": "time",
}
ALGORITHM: dict[str, Any] = {
    "name": "bad_algo",
    "version": 3,
    "use_case": "pumps",
    "task": "regression",
    "features": ["vibration", "rpm"],
    "target": "flow",
    "description": "the spring model",
    "sha256": SHA,
    "size": 2048,
    "filename": "bad_algo-v3.pkl",
    "uploaded_by": "ana",
    "uploaded_at": AT,
    "services": ["bad_service"],
}
SERVICE: dict[str, Any] = {
    "name": "bad_service",
    "routing_key": "bad_service.data",
    "use_case": "pumps",
    "algorithm_name": "bad_algo",
    "algorithm_version": "latest",
    "resolved_version": 3,
    "sha256": SHA,
    "features": ["vibration", "rpm"],
    "updated_at": AT,
    "updated_by": "ana",
}
QM_JOB: dict[str, Any] = {
    "message_id": "m-1",
    "service": "good_service",
    "payload": {},
    "last_status": "finished",
    "result": {"prediction": 1.5},
    "message": "",
    "metadata": {"start_date": AT, "end_date": AT, "worker": "bad-worker", "routing_key": "rk"},
    "model_version": "good_algo:1",
}
RESULT: dict[str, Any] = {
    "retrained_model_results": {"Model": "Ridge Regression", "MAE": 0.8, "R2": 0.61},
    "previous_model_results": {"Model": "Linear Regression", "MAE": 0.9, "R2": 0.55},
    "champion": "bad_algo:3",
    "metric": "MAE",
    "higher_is_better": False,
    "models": ["lr", "ridge"],
    "training_rows": 900,
    "holdout_rows": 300,
    "holdout": {"testing": 250, "production": 50},
    "leaderboard": [{"Model": "Ridge Regression", "MAE": 0.8}],
    "challenger_sha256": SHA,
    "decision": {"promoted": True, "reason": "challenger MAE 0.8 beats champion 0.9"},
    "promotion": {"from_version": "bad_algo:3", "to_version": "bad_algo:4", "requested_by": "ana"},
}
RETRAINING_JOB: dict[str, Any] = {
    "id": 41,
    "kind": "retraining",
    "use_case": "pumps",
    "service": "bad_service",
    "status": "finished",
    "stage": "finished",
    "percent": 100,
    "request": {"use_case": "pumps", "service": "bad_service", "models": ["ridge"]},
    "result": RESULT,
    "error": None,
    "requested_by": "ana",
    "created_at": AT,
    "started_at": AT,
    "finished_at": AT,
}
# The record that broke the explainer pages: a job's challenger, named by `job_id`.
CHALLENGER_EXPLAINER: dict[str, Any] = {
    **RETRAINING_JOB,
    "id": 42,
    "kind": "explainer",
    "service": None,
    "request": {
        "model": "challenger of retraining job 41",
        "job_id": 41,
        "use_case": "pumps",
        "sha256": SHA,
        "data": "production",
        "max_rows": 500,
    },
    "result": {
        "model": "challenger of retraining job 41",
        "data": "production",
        "rows_explained": 500,
        "rows_available": 2000,
        "shap": "linear SHAP",
        "seconds": 2.5,
    },
}
VERSION_EXPLAINER: dict[str, Any] = {
    **CHALLENGER_EXPLAINER,
    "id": 43,
    "request": {
        "model": "bad_algo:3",
        "model_name": "bad_algo",
        "model_version": 3,
        "use_case": "pumps",
        "sha256": SHA,
        "data": "testing",
        "max_rows": 500,
    },
    "result": CHALLENGER_EXPLAINER["result"] | {"model": "bad_algo:3", "data": "testing"},
}
PROMOTION: dict[str, Any] = {
    "id": 7,
    "action": "promote",
    "service": "bad_service",
    "use_case": "pumps",
    "from_version": "bad_algo:3",
    "to_version": "bad_algo:4",
    "job_id": 41,
    "requested_by": "ana",
    "at": AT,
    "metrics": {"MAE": 0.8},
}
# The good records beside the damaged ones: each must still be shown.
GOOD_ALGORITHM = ALGORITHM | {"name": "good_algo", "version": 1, "services": ["good_service"]}
GOOD_SERVICE = SERVICE | {"name": "good_service", "algorithm_name": "good_algo"}
GOOD_JOB = RETRAINING_JOB | {"id": 40, "service": "good_service"}
GOOD_EXPLAINER = VERSION_EXPLAINER | {"id": 39}
GOOD_PROMOTION = PROMOTION | {"id": 6, "service": "good_service"}
GOOD_QM_JOB = QM_JOB | {"metadata": QM_JOB["metadata"] | {"worker": "good-worker"}}


class FakeApis:
    """One server standing in for every API: it answers the JSON set for a path (any
    method, any query), and 404 for any other path."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.app = FastAPI()
        self.app.add_api_route(
            "/{path:path}", self._answer, methods=["GET", "POST", "PUT", "DELETE"]
        )

    async def _answer(self, path: str, request: Request) -> JSONResponse:
        status, body = self.answers.get(f"{request.method} /{path}") or self.answers.get(
            f"/{path}", (404, {"detail": f"nothing at /{path}"})
        )
        return JSONResponse(body, status_code=status)

    def serve(self, answers: dict[str, Any]) -> None:
        """Answer these bodies (200) from now on, and nothing else."""
        self.answers = {path: (200, body) for path, body in answers.items()}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeApis]:
    """The stand-in APIs, with the admin pointed at them for the module."""
    apis = FakeApis()
    saved = dict(settings.GITS_API_URLS)
    with LiveServer(apis.app) as server:
        point_admin_at(**dict.fromkeys(API_NAMES, server.url))
        yield apis
    point_admin_at(**saved)


def answers_with(**changes: Any) -> dict[str, Any]:
    """Every API answer the pages read, all good, with `changes` (path -> body)."""
    bad_records: dict[str, Any] = {
        "/queue_manager/algorithms": [GOOD_ALGORITHM, ALGORITHM],
        "/queue_manager/services": [GOOD_SERVICE, SERVICE],
        "/queue_manager/services/good_service": GOOD_SERVICE,
        "/queue_manager/services/bad_service": SERVICE,
        "/queue_manager/jobs": [GOOD_QM_JOB],
        "/ml_data_api/use_cases": [{"use_case": USE_CASE}],
        "/retraining_api/jobs": [GOOD_JOB, RETRAINING_JOB],
        "/retraining_api/jobs/41": RETRAINING_JOB,
        "/retraining_api/explainers": [GOOD_EXPLAINER, VERSION_EXPLAINER, CHALLENGER_EXPLAINER],
        "/retraining_api/explainers/42": CHALLENGER_EXPLAINER,
        "/retraining_api/explainers/43": VERSION_EXPLAINER,
        "/retraining_api/promotions": [GOOD_PROMOTION, PROMOTION],
    }
    return bad_records | {f"/{path.lstrip('/')}": body for path, body in changes.items()}


@dataclass(frozen=True)
class Kind:
    """A kind of record: a good one, where the APIs answer it (the damaged one given),
    the pages that show it, what shows the good record beside it, and its fields."""

    record: dict[str, Any]
    answers: Callable[[Any], dict[str, Any]]
    pages: tuple[str, ...]
    good_marker: str  # on the first page: the good record is still shown
    fields: tuple[Field, ...]


KINDS = {
    "algorithm version": Kind(
        ALGORITHM,
        lambda bad: answers_with(**{"queue_manager/algorithms": [GOOD_ALGORITHM, bad]}),
        (
            "/algorithms/",
            "/algorithms/bad_algo/",
            "/services/new/",
            "/services/good_service/bind/",
            "/retraining/explainers/",
        ),
        'href="/algorithms/good_algo/"',
        VERSION_FIELDS,
    ),
    "service": Kind(
        SERVICE,
        lambda bad: answers_with(
            **{
                "queue_manager/services": [GOOD_SERVICE, bad],
                "queue_manager/services/bad_service": bad,
            }
        ),
        (
            "/services/",
            "/services/bad_service/",
            "/services/bad_service/bind/",
            "/retraining/start/",
        ),
        'href="/services/good_service/"',
        SERVICE_FIELDS,
    ),
    "queue_manager job": Kind(
        QM_JOB,
        lambda bad: answers_with(**{"queue_manager/jobs": [GOOD_QM_JOB, bad]}),
        ("/services/good_service/",),
        "<td>good-worker</td>",
        (),
    ),
    "retraining job": Kind(
        RETRAINING_JOB,
        lambda bad: answers_with(
            **{"retraining_api/jobs": [GOOD_JOB, bad], "retraining_api/jobs/41": bad}
        ),
        ("/retraining/", "/retraining/jobs/41/"),
        'href="/retraining/jobs/40/"',
        RETRAINING_FIELDS,
    ),
    "explainer of a challenger": Kind(
        CHALLENGER_EXPLAINER,
        lambda bad: answers_with(
            **{
                "retraining_api/explainers": [GOOD_EXPLAINER, bad],
                "retraining_api/explainers/42": bad,
            }
        ),
        ("/retraining/explainers/", "/retraining/explainers/42/"),
        'href="/retraining/explainers/39/"',
        EXPLAINER_FIELDS,
    ),
    "explainer of a model version": Kind(
        VERSION_EXPLAINER,
        lambda bad: answers_with(
            **{
                "retraining_api/explainers": [GOOD_EXPLAINER, bad],
                "retraining_api/explainers/43": bad,
            }
        ),
        ("/retraining/explainers/", "/retraining/explainers/43/"),
        'href="/retraining/explainers/39/"',
        EXPLAINER_FIELDS,
    ),
    "promotion": Kind(
        PROMOTION,
        lambda bad: answers_with(**{"retraining_api/promotions": [GOOD_PROMOTION, bad]}),
        ("/retraining/promotions/",),
        'href="/services/good_service/"',
        PROMOTION_FIELDS,
    ),
    "use case": Kind(
        {"use_case": USE_CASE},
        lambda bad: answers_with(
            **{"ml_data_api/use_cases": [{"use_case": USE_CASE | {"name": "good_case"}}, bad]}
        ),
        ("/algorithms/upload/", "/retraining/start/", "/monitoring/reports/"),
        '<option value="good_case"',
        (),
    ),
}
GONE = object()  # a field taken out of the record
WRONG_VALUES = ["", "not a name!", -1, 0, 1.5, True, [], {}, [1, None], {"x": 1}, "2025-13-45"]


def paths(record: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every field of a record, nested objects' fields included."""
    out: list[tuple[str, ...]] = []
    for key, value in record.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += paths(value, (*prefix, key))
    return out


def damaged(record: dict[str, Any], changes: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """A copy of the record with each path's value replaced (GONE: taken out)."""
    out = copy.deepcopy(record)
    for path, value in sorted(changes.items(), key=lambda item: len(item[0])):
        parent: Any = out
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue  # an outer change already replaced it
        if value is GONE:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
    return out


def said_missing(kind: Kind, changes: dict[tuple[str, ...], Any]) -> list[str]:
    """What the pages must say is missing: each required top-level field taken out (or
    nulled, where null has no meaning of its own)."""
    required = {f.name: f for f in kind.fields if f.required}
    return [
        f"{path[0]}: missing"
        for path, value in changes.items()
        if len(path) == 1
        and path[0] in required
        and (value is GONE or (value is None and not required[path[0]].nullable))
    ]


def open_pages(browser: Client, fake: FakeApis, kind: Kind, bad: Any) -> list[str]:
    """Every page of the kind, with the damaged record served; each page's text."""
    fake.serve(kind.answers(bad))
    pages = []
    for url in kind.pages:
        response = browser.get(url)
        page = text(response)
        assert response.status_code == 200, f"{url} answered {response.status_code}:\n{page}"
        pages.append(page)
    assert kind.good_marker in pages[0], f"the good record is not shown on {kind.pages[0]}"
    return pages


def changes_of(record: dict[str, Any]) -> st.SearchStrategy[dict[tuple[str, ...], Any]]:
    """Some fields of the record (nested ones too) taken out, nulled or given a value of
    another type."""
    value = st.one_of(st.just(GONE), st.none(), st.sampled_from(WRONG_VALUES))
    return st.dictionaries(st.sampled_from(paths(record)), value, min_size=1, max_size=6)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_the_good_records_are_shown_as_they_are(
    browser: Client, fake: FakeApis, kind_name: str
) -> None:
    kind = KINDS[kind_name]
    for page in open_pages(browser, fake, kind, kind.record):
        assert "incomplete" not in page


@pytest.mark.parametrize("kind_name", sorted(KINDS))
@pytest.mark.parametrize("bad", [{}, "not a record", None, 42, []], ids=repr)
def test_a_record_that_is_no_record_is_named_not_a_500(
    browser: Client, fake: FakeApis, kind_name: str, bad: Any
) -> None:
    open_pages(browser, fake, KINDS[kind_name], bad)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_each_required_field_missing_is_said(
    browser: Client, fake: FakeApis, kind_name: str
) -> None:
    kind = KINDS[kind_name]
    for field in kind.fields:
        changes: dict[tuple[str, ...], Any] = {(field.name,): GONE}
        pages = open_pages(browser, fake, kind, damaged(kind.record, changes))
        for words in said_missing(kind, changes):
            assert all(words in page for page in pages[:1]), (field.name, words)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_damage_to_a_record_is_shown_never_a_500(
    browser: Client, fake: FakeApis, kind_name: str, data: st.DataObject
) -> None:
    kind = KINDS[kind_name]
    changes = data.draw(changes_of(kind.record), label="changes")
    pages = open_pages(browser, fake, kind, damaged(kind.record, changes))
    for words in said_missing(kind, changes):
        assert words in pages[0], words


def test_the_explainer_of_a_challenger_is_shown_with_its_job(
    browser: Client, fake: FakeApis
) -> None:
    # The record that answered 500 on the explainer tab for everyone: a job's challenger
    # (named by job_id, without model_name) among the explainers.
    fake.serve(answers_with())
    for url in ("/retraining/explainers/", "/retraining/explainers/42/"):
        response = browser.get(url)
        page = text(response)
        assert response.status_code == 200, page
        assert "challenger of retraining job 41" in page
        assert '<a href="/retraining/jobs/41/">retraining job #41</a>' in page
    listing = text(browser.get("/retraining/explainers/"))
    assert "bad_algo:3" in listing  # the other explainers are listed too


def test_an_unusable_use_case_is_left_out_of_the_choices_and_named(
    browser: Client, fake: FakeApis
) -> None:
    broken = {"use_case": {"name": "broken_case", "task": "regression"}}
    good = {"use_case": USE_CASE | {"name": "good_case"}}
    fake.serve(answers_with(**{"ml_data_api/use_cases": [good, broken]}))

    page = text(browser.get("/algorithms/upload/"))

    assert '<option value="good_case"' in page and '<option value="broken_case"' not in page
    assert "ml_data_api answered use cases the admin cannot offer: broken_case: features" in page


def test_a_list_that_is_no_list_is_said(browser: Client, fake: FakeApis) -> None:
    fake.serve(answers_with(**{"retraining_api/jobs": {"jobs": []}}))

    response = browser.get("/retraining/")

    assert response.status_code == 502
    assert "retraining_api answered {'jobs': []} where a list was expected" in text(response)


def test_an_upload_refusal_is_shown_in_words_and_the_form_kept(
    browser: Client, fake: FakeApis
) -> None:
    # queue_manager refuses the file (422) with the check that failed
    reason = "model check 'load' failed: the file is not a loadable model file"
    fake.serve(answers_with())
    fake.answers["POST /queue_manager/algorithms"] = (422, {"detail": reason})
    response = browser.post(
        "/algorithms/upload/",
        {
            "name": "my_model",
            "use_case": "pumps",
            "description": "from the spring data",
            "file": SimpleUploadedFile("model.pkl", b"hello\n"),
        },
    )

    page = text(response)
    assert response.status_code == 422
    assert f"queue_manager refused: {reason}; nothing was changed" in page
    assert 'value="my_model"' in page and "from the spring data" in page
    assert re.search(r'<option value="pumps"[^>]* selected>', page), page
