from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ml_data_api.conftest import app, settings  # noqa: F401  (shared fixtures)


@pytest.fixture(autouse=True)
def machine_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A machine-secrets file of the test's own: the real one is the machine's."""
    path = tmp_path / "machine-services.env"
    monkeypatch.setenv("GITS_MACHINE_SECRETS", str(path))
    yield path
