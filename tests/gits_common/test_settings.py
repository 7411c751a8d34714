"""A missing secret stops a service with a message saying what to do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gits_common.settings import MissingSetting, postgres_settings, required, role_tokens


def test_a_missing_secret_names_itself_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("GITS_TEST_SECRET", "")
    with pytest.raises(MissingSetting) as raised:
        required("GITS_TEST_SECRET")
    assert "GITS_TEST_SECRET is not set" in str(raised.value)
    assert "make env" in str(raised.value)


def test_a_set_secret_is_returned(monkeypatch):
    monkeypatch.setenv("GITS_TEST_SECRET", "s3cret")
    assert required("GITS_TEST_SECRET") == "s3cret"


@pytest.mark.parametrize(
    "name", ["GITS_ADMIN_TOKEN", "GITS_RUNTIME_TOKEN", "GITS_READ_TOKEN", "POSTGRES_PASSWORD"]
)
def test_a_secret_shorter_than_32_characters_is_refused_naming_it(monkeypatch, name):
    # Observed: GITS_API_TOKEN=x served
    monkeypatch.setenv(name, "x")
    with pytest.raises(MissingSetting) as raised:
        role_tokens() if name.startswith("GITS_") else postgres_settings()
    assert f"{name} has 1 characters; a secret needs at least 32" in str(raised.value)


def test_the_three_role_tokens_must_differ(monkeypatch):
    monkeypatch.setenv("GITS_READ_TOKEN", os.environ["GITS_ADMIN_TOKEN"])
    with pytest.raises(MissingSetting, match="three different secrets"):
        role_tokens()


def test_an_api_with_a_short_token_refuses_to_start(monkeypatch):
    env = {**os.environ, "GITS_RUNTIME_TOKEN": "x", "ML_DATA_API_PORT": "1"}
    started = subprocess.run(
        [sys.executable, "-m", "ml_data_api"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode != 0
    assert "GITS_RUNTIME_TOKEN has 1 characters" in started.stderr
