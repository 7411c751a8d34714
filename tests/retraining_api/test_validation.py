"""Every retraining_api route refuses a bad name or id with a 4xx naming the parameter,
never a 5xx: each parameter and body field that names a model, use case, service or
table is checked by that thing's rule before anything reads it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute
from hypothesis import given, settings
from hypothesis import strategies as st

from gits_common.registry import NAME_PATTERN
from retraining_api.routes import router

USE_CASE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"  # gits_common.schemas.UseCaseName
# What each parameter or body field names, and the rule it follows.
NAMES = {
    "use_case": USE_CASE_PATTERN,
    "config_name": USE_CASE_PATTERN,
    "service": NAME_PATTERN,
    "name": NAME_PATTERN,
    "model_name": NAME_PATTERN,
    "algorithm_name": NAME_PATTERN,
}
TABLES = {"data", "evaluate_on"}
IDS = {"job_id", "model_version"}
TEXTS = {"requested_by", "models", "metric"}  # free text: 1 to 200 printable characters
OTHERS = {
    "limit",
    "time_budget_seconds",
    "auto_promote",
    "promote_margin",
    "max_rows",
    "tune",
    "ensemble",
    "fix_imbalance",
}
# Valid values naming nothing that exists: only the parameter under test is bad.
VALID: dict[str, Any] = {
    "use_case": "no_such_use_case",
    "config_name": "no_such_use_case",
    "service": "no_such_service",
    "name": "no_such_service",
    "model_name": "no_such_model",
    "algorithm_name": "no_such_algorithm",
    "job_id": 999_999_999,
    "data": "testing",
    "evaluate_on": "testing",
}
BODIES: dict[str, dict[str, Any]] = {  # a valid body of each kind
    "RetrainingCreate": {"use_case": VALID["use_case"]},
    "ExplainerCreate": {"model_name": VALID["model_name"]},
    "Actor": {},
    "RegistrationCreate": {},
}
BAD: dict[str, list[Any]] = {
    "name": ["", "a" * 101, "ab\x00c", "a b", "../etc", "name\n", "émile", "-x", "x;drop"],
    "table": ["", "nope", "TRAINING", "\x00"],
    "id": ["0", "-1", "99999999999999999999", "abc", "1.5", "\x00"],
    "body id": [0, -1, 2**63, 2**70, "abc", "", "\x00"],
    "version": [0, -1, 2**31, "newest", "", "\x00"],  # queue_manager: 1 to 2**31 - 1
    "text": ["", "a" * 201, "ab\x00c", "tab\there", "line\nbreak"],
}
TOKEN = os.environ["GITS_ADMIN_TOKEN"]


@dataclass(frozen=True)
class Parameter:
    """One parameter of one route: where it goes, and what it is."""

    method: str
    path: str
    name: str  # as the client sends it (the alias)
    where: str  # "path", "query" or "body"
    body: Any  # the route's body model (a pydantic model class), if any

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where}.{self.name}"


def parameters() -> list[Parameter]:
    """Every parameter and body field of every retraining_api route."""
    found = []
    for route in router.routes:
        assert isinstance(route, APIRoute)
        method = sorted(route.methods or ["GET"])[0]
        body: Any = route.body_field.field_info.annotation if route.body_field else None
        for where, fields in (
            ("path", route.dependant.path_params),
            ("query", route.dependant.query_params),
        ):
            found += [Parameter(method, route.path, f.alias, where, body) for f in fields]
        if body is not None:
            found += [Parameter(method, route.path, n, "body", body) for n in body.model_fields]
    return found


PARAMETERS = parameters()


def test_every_parameter_is_known_to_this_test():
    # A new route or field must say what it names, so that it is walked below.
    names = {p.name for p in PARAMETERS}
    assert names <= set(NAMES) | TABLES | IDS | TEXTS | OTHERS, names
    assert {"use_case", "service", "name", "model_name", "config_name", "job_id"} <= names


def send(client: httpx.Client, parameter: Parameter, value: Any) -> httpx.Response:
    """The route called with valid values everywhere but `value` for `parameter`."""
    route = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == parameter.path)
    path = {f.alias: VALID[f.alias] for f in route.dependant.path_params}
    query = {f.alias: VALID[f.alias] for f in route.dependant.query_params if f.alias in VALID}
    body = dict(BODIES[parameter.body.__name__]) if parameter.body else None
    if parameter.where == "body":
        assert body is not None
        if parameter.name == "job_id":  # a job's challenger instead of a model name
            body.pop("model_name")
        body[parameter.name] = [value] if parameter.name == "models" else value
    else:
        {"path": path, "query": query}[parameter.where][parameter.name] = value
    url = parameter.path.format(**{k: quote(str(v), safe="") for k, v in path.items()})
    return client.request(parameter.method, url, params=query, json=body)


def bad_values(parameter: Parameter) -> list[Any]:
    """Values each kind of parameter must refuse: empty, too long, NUL, illegal."""
    if parameter.name in NAMES:
        return BAD["name"]
    if parameter.name in TABLES:
        return BAD["table"]
    if parameter.name == "model_version":
        return BAD["version"]
    if parameter.name in IDS:
        return BAD["body id"] if parameter.where == "body" else BAD["id"]
    return BAD["text"] if parameter.name in TEXTS else []


WALKED = [(p, v) for p in PARAMETERS for v in bad_values(p)]


@pytest.fixture(scope="module")
def client(retraining_url) -> Iterator[httpx.Client]:
    """A client of the live retraining_api (module-scoped, for hypothesis)."""
    with httpx.Client(
        base_url=retraining_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as http:
        yield http


@pytest.mark.parametrize(("parameter", "value"), WALKED, ids=[f"{p}={v!r}" for p, v in WALKED])
def test_a_bad_name_or_id_is_a_4xx_naming_the_parameter(client, parameter, value):
    response = send(client, parameter, value)

    assert 400 <= response.status_code < 500, response.text
    if parameter.where == "path" and response.status_code in (404, 405):
        return  # an empty or slashed path segment matches no route at all
    assert response.status_code == 422, response.text
    assert f"{parameter.where}.{parameter.name}" in response.json()["detail"], response.text


def test_the_original_explainer_url_with_an_empty_model_name_is_a_422(client):
    response = client.get("/retraining_api/get_explainer_dashboard", params={"model_name": ""})

    assert response.status_code == 422
    assert "query.model_name" in response.json()["detail"]


NAMED = [p for p in PARAMETERS if p.name in NAMES]


@pytest.mark.parametrize("parameter", NAMED, ids=map(str, NAMED))
@settings(max_examples=30, deadline=None)
@given(value=st.text(st.characters(codec="utf-8"), max_size=120))  # no lone surrogates
def test_any_text_as_a_name_is_answered_never_a_5xx(client, parameter, value):
    response = send(client, parameter, value)

    assert response.status_code < 500, response.text
    if not re.fullmatch(NAMES[parameter.name], value) and parameter.where != "path":
        assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("tune", {"trials": 0}, "body.tune.trials"),
        ("tune", {"trials": 501}, "body.tune.trials"),
        ("tune", {"trials": True}, "body.tune.trials"),
        ("tune", {"time_budget_seconds": 0}, "body.tune.time_budget_seconds"),
        ("tune", {"early_stopping_trials": 0}, "body.tune.early_stopping_trials"),
        ("tune", {"trails": 5}, "body.tune.trails"),
        ("tune", 20, "body.tune"),
        ("ensemble", "voting", "body.ensemble"),
        ("fix_imbalance", "yes", "body.fix_imbalance"),
        ("fix_imbalance", 1, "body.fix_imbalance"),
    ],
)
def test_a_bad_tuning_ensemble_or_imbalance_option_is_a_422_naming_it(client, field, value, named):
    body = {"use_case": VALID["use_case"], field: value}

    response = client.post("/retraining_api/jobs", json=body)

    assert response.status_code == 422, response.text
    assert named in response.json()["detail"], response.text
