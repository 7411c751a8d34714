"""An ml_data_api app on the real test database, and use cases to exercise it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gits_common.schemas import Column, Task, UseCase
from ml_data_api.app import create_app
from ml_data_api.settings import Settings, load_settings

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def settings(postgres_dsn: str) -> Settings:
    """ml_data_api settings pointing at the test database."""
    return dataclasses.replace(load_settings(), max_batch_rows=20_000)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """A fresh ml_data_api application."""
    return create_app(settings)


def unique(prefix: str) -> str:
    """A use-case name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def sensor_use_case(name: str | None = None) -> UseCase:
    """A regression use case with three float sensors."""
    return UseCase(
        name=name or unique("sensors"),
        task=Task.regression,
        features=[Column(name=n) for n in ("temp_A", "temp_B", "humidity")],
        target=Column(name="quality"),
        time_column="ts",
    )


def sensor_rows(n: int, *, start: datetime = T0, prefix: str = "m", **extra: Any) -> list[dict]:
    """n valid rows, one a minute, with message ids prefix-0, prefix-1, ..."""
    return [
        {
            "message_id": f"{prefix}-{i}",
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "temp_A": 200.0 + i % 50,
            "temp_B": 300 + i % 7,
            "humidity": 10.5,
            "quality": 350.0 + i % 13,
            **extra,
        }
        for i in range(n)
    ]


@pytest.fixture
def sensors(client: TestClient) -> UseCase:
    """A registered regression use case."""
    use_case = sensor_use_case()
    response = client.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json"))
    assert response.status_code == 201, response.text
    return use_case
