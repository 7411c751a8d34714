"""monitoring_api loads only the model versions services are bound to, found through
queue_manager, never a version because production rows name it; and a file planted in
queue_manager's store (its checksum updated to match) is refused by the allow-list
unpickler without running (issue #11)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pandas as pd
import pytest

from gits_common import errors
from gits_common.clients import QueueManagerClient
from gits_common.registry import AlgorithmRead, ServiceRead
from gits_common.schemas import Task
from monitoring_api.frames import MODEL_VERSION
from monitoring_api.models import Models, ModelUnavailable
from tests.model_files import code_running_pickle, model_bytes

FEATURES = ["a", "b"]
NOW = datetime(2025, 1, 1, tzinfo=UTC)


class FakeQueueManager:
    """queue_manager's answers: services and stored files; every download is counted."""

    def __init__(self, bound: dict[str, str], files: dict[str, bytes]) -> None:
        self.bound = bound  # service -> "algorithm:version"
        self.files = files  # "algorithm:version" -> bytes (their stored checksum matches)
        self.downloaded: list[str] = []

    async def services(self) -> list[ServiceRead]:
        out = []
        for service, label in self.bound.items():
            name, version = label.split(":")
            out.append(
                ServiceRead(
                    name=service,
                    routing_key=service,
                    use_case="uc",
                    algorithm_name=name,
                    algorithm_version=int(version),
                    resolved_version=int(version),
                    sha256=None,
                    features=FEATURES,
                    updated_at=NOW,
                    updated_by=None,
                    model_status=None,
                )
            )
        return out

    async def verified_model(self, name: str, version: int) -> tuple[AlgorithmRead, bytes]:
        label = f"{name}:{version}"
        self.downloaded.append(label)
        if label not in self.files:
            raise errors.NotFound(f"no algorithm {label}")
        content = self.files[label]
        record = AlgorithmRead(
            name=name,
            version=version,
            use_case="uc",
            task=Task.regression,
            features=FEATURES,
            target="y",
            description=None,
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
            filename="m.pkl",
            uploaded_by="test",
            uploaded_at=NOW,
            services=[],
        )
        return record, content


def models_of(qm: FakeQueueManager) -> Models:
    """monitoring_api's model cache over the fake queue_manager."""
    return Models(cast(QueueManagerClient, qm))


def window(*labels: str) -> pd.DataFrame:
    """Production rows whose model_version column names these labels."""
    return pd.DataFrame({"a": 1.0, "b": 2.0, MODEL_VERSION: list(labels)})


def test_the_bound_version_is_loaded_whatever_the_rows_name():
    qm = FakeQueueManager({"svc": "good:1"}, {"good:1": model_bytes(FEATURES)})
    models = models_of(qm)

    loaded = asyncio.run(models.bound("uc", window("evil:7", "evil:7", "evil:7", "good:1")))

    assert loaded.label == "good:1"
    assert qm.downloaded == ["good:1"]


def test_of_several_bound_versions_the_one_that_made_most_rows_is_loaded():
    files = {"m:1": model_bytes(FEATURES), "m:2": model_bytes(FEATURES, seed=1)}
    qm = FakeQueueManager({"a_svc": "m:1", "b_svc": "m:2"}, files)

    loaded = asyncio.run(models_of(qm).bound("uc", window("m:2", "m:2", "m:1", "x:9")))

    assert loaded.label == "m:2"
    assert qm.downloaded == ["m:2"]


def test_without_a_bound_service_no_model_is_loaded():
    qm = FakeQueueManager({}, {"m:1": model_bytes(FEATURES)})

    with pytest.raises(ModelUnavailable, match="no service of use case 'uc'"):
        asyncio.run(models_of(qm).bound("uc", window("m:1")))
    assert qm.downloaded == []


def test_a_planted_file_that_would_run_code_is_refused_and_never_runs(tmp_path: Path):
    marker = tmp_path / "marker"
    planted = code_running_pickle(f"open({str(marker)!r}, 'w').write('ran')")
    qm = FakeQueueManager({"svc": "m:1"}, {"m:1": planted})

    with pytest.raises(ModelUnavailable, match="cannot be loaded") as refused:
        asyncio.run(models_of(qm).bound("uc", window("m:1")))

    assert "builtins.exec" in str(refused.value)
    assert not marker.exists()
