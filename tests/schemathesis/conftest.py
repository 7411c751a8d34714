"""Schemathesis against every GITS API, served on a free port, with the admin's bearer
token.

Each module loads its API's OpenAPI document when pytest collects it, and schemathesis
makes one test of each operation: examples from the document, its coverage cases
(boundaries, missing and wrong values) and up to `max_examples` generated cases, with
every check (no 5xx, status codes and bodies as documented, invalid input refused,
valid input accepted, no answer without a token). The app each test calls is built by
a fixture, as the other tests build it, on the real PostgreSQL and RabbitMQ; its
PostgreSQL tables are in a schema of their own (`search_path`), so that the use cases
schemathesis registers, under random names and the documents' example names (the
demo's `product_quality`), never reach the tables the other tests read.

Two lists in each module shape the run, each entry with its reason:
- RULES: operations whose input meets rules JSON Schema cannot state (a time within
  pandas' range, start before end, rows that fit the use case's columns, a model file
  that loads): for them a 422 to schema-valid input is expected.
- PENDING: operations with a failure whose fix is in a file the test's authors do not
  own, naming the change; strict xfail, so the test fails once the fix lands and the
  entry must go.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import quote

import psycopg2
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig

from gits_common.settings import PostgresSettings, postgres_settings
from ml_data_api.app import create_app as create_ml_data_api
from ml_data_api.settings import load_settings as ml_data_api_settings
from queue_manager.app import create_app as create_queue_manager
from queue_manager.sandbox import Sandbox
from queue_manager.settings import load_settings as queue_manager_settings
from tests.conftest import LiveServer, private_store

# Fixed, so that every run tries the same cases: CI sees what a developer saw.
SEED = 20_251_130
SCHEMA = "schemathesis"
# What positive_data_acceptance expects of schema-valid input by default, and 422.
ACCEPTED = ["2xx", "3xx", 401, 403, 404, 409, 429, "5xx"]


@dataclasses.dataclass(frozen=True)
class OwnSchema(PostgresSettings):
    """PostgreSQL settings whose connections create and find tables in `schema`."""

    schema: str = SCHEMA

    def dsn(self, application_name: str) -> str:
        return f"{super().dsn(application_name)}&options={quote(f'-csearch_path={self.schema}')}"


@pytest.fixture(scope="session")
def own_postgres(postgres_dsn: str) -> PostgresSettings:
    """The test database's settings, with tables in the schemathesis schema (emptied
    once per session)."""
    conn = psycopg2.connect(postgres_dsn)
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    conn.close()
    return OwnSchema(**dataclasses.asdict(postgres_settings()))


@pytest.fixture(scope="module")
def ml_data_api_url(own_postgres: PostgresSettings) -> Iterator[str]:
    """An ml_data_api on the schemathesis schema, served on a free port."""
    settings = dataclasses.replace(ml_data_api_settings(), postgres=own_postgres)
    with LiveServer(create_ml_data_api(settings)) as server:
        yield server.url


@contextmanager
def queue_manager(ml_data_api_url: str, *, preload: tuple[str, ...] = ()) -> Iterator[FastAPI]:
    """A queue_manager on an in-memory store checking uploads against `ml_data_api_url`,
    its sandbox importing `preload` when the first upload starts it."""
    settings = dataclasses.replace(
        private_store(queue_manager_settings()), ml_data_api_url=ml_data_api_url
    )
    sandbox = Sandbox(time_limit=30, memory_bytes=1024 * 2**20, preload=preload)
    try:
        yield create_queue_manager(settings, sandbox=sandbox)
    finally:
        sandbox.close()


def config(*, max_examples: int, rules: Mapping[str, str]) -> SchemathesisConfig:
    """Every check; the examples, coverage and fuzzing phases (the stateful one chains
    calls at random and is left out), at most `max_examples` generated cases an
    operation; every request with the admin's bearer token. `rules` names the
    operations (`METHOD /path`) that may refuse schema-valid input with 422."""
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": max_examples},
            "phases": {"stateful": {"enabled": False}},
            "auth": {"openapi": {"bearer": {"bearer": os.environ["GITS_ADMIN_TOKEN"]}}},
            "operations": [
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, 422]}},
                }
                for name in rules
            ],
        }
    )


def openapi_schema(
    app: FastAPI, *, max_examples: int, rules: Mapping[str, str]
) -> schemathesis.schemas.BaseSchema:
    """The app's OpenAPI document for schemathesis. `app` is only asked for its
    document, never started: the tests call the app their fixture serves on a free port
    (`case.call_and_validate(base_url=...)`). Served, not called in-process: schemathesis
    ends an in-process app's lifespan after each operation, and these apps close their
    stores and clients at the end of theirs."""
    return schemathesis.openapi.from_dict(
        app.openapi(), config=config(max_examples=max_examples, rules=rules)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each operation a module lists in PENDING as a strict expected failure."""
    for item in items:
        pending: Mapping[str, str] = getattr(getattr(item, "module", None), "PENDING", {})
        for name, change in pending.items():
            if item.name.endswith(f"[{name}]"):
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"pending: {change}"))
