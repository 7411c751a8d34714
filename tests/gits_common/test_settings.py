"""A missing secret stops a service with a message saying what to do."""

from __future__ import annotations

import pytest

from gits_common.settings import MissingSetting, required


def test_a_missing_secret_names_itself_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("GITS_TEST_SECRET", "")
    with pytest.raises(MissingSetting) as raised:
        required("GITS_TEST_SECRET")
    assert "GITS_TEST_SECRET is not set" in str(raised.value)
    assert "make env" in str(raised.value)


def test_a_set_secret_is_returned(monkeypatch):
    monkeypatch.setenv("GITS_TEST_SECRET", "s3cret")
    assert required("GITS_TEST_SECRET") == "s3cret"
