"""PUT /thresholds changes only the fields it is given: a field left out keeps its value
(issue #13: leaving one out cleared it, which silently turned off per-feature drift
alerts), and null turns a check off."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitoring_api.app import create_app
from tests.monitoring_api.conftest import hermetic, monitoring_settings

CHOSEN = {
    "drift_share": 0.3,
    "feature_drift_score": 0.2,
    "performance_drop": 0.1,
    "anomaly_rate": 0.2,
    "webhook_url": "http://hooks.example/x",
}

# Partial changes: any subset of the fields, each a valid value or null.
changes = st.fixed_dictionaries(
    {},
    optional={
        "drift_share": st.none() | st.floats(min_value=0, max_value=1),
        "feature_drift_score": st.none() | st.floats(min_value=0, max_value=10),
        "performance_drop": st.none() | st.floats(min_value=0, max_value=10, exclude_min=True),
        "anomaly_rate": st.none() | st.floats(min_value=0, max_value=1),
        "webhook_url": st.none() | st.sampled_from(["http://a.example/1", "https://b.example/2"]),
    },
)


def thresholds_url(stage) -> str:
    return f"/monitoring_api/use_cases/{stage.use_case('lim', upload=False).name}/thresholds"


def test_a_field_left_out_keeps_its_value(client, stage):
    # Given a use case that set every threshold
    url = thresholds_url(stage)
    assert client.put(url, json=CHOSEN).status_code == 200

    # When one of them is changed
    answer = client.put(url, json={"drift_share": 0.7})

    # Then the others, the per-feature drift limit among them, are as they were
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**CHOSEN, "drift_share": 0.7}
    assert client.get(url).json() == {**CHOSEN, "drift_share": 0.7}


def test_a_first_change_keeps_the_configured_defaults(apis, auth, stage):
    # Given an operator whose default per-feature drift limit is 0.3
    app = hermetic(create_app(monitoring_settings(apis, default_feature_drift_score=0.3)))
    with TestClient(app, headers=auth) as client:
        url = thresholds_url(stage)

        # When a use case that never set a threshold sets only its drift share
        answer = client.put(url, json={"drift_share": 0.7})

        # Then per-feature drift alerts stay on, at the default
        assert answer.json()["feature_drift_score"] == 0.3
        assert client.get(url).json() == {
            "drift_share": 0.7,
            "feature_drift_score": 0.3,
            "performance_drop": None,
            "anomaly_rate": 0.1,
            "webhook_url": None,
        }


def test_null_turns_a_check_off_and_keeps_the_others(client, stage):
    url = thresholds_url(stage)
    assert client.put(url, json=CHOSEN).status_code == 200

    off = client.put(url, json={"feature_drift_score": None, "webhook_url": None})

    assert off.json() == {**CHOSEN, "feature_drift_score": None, "webhook_url": None}
    assert client.get(url).json() == off.json()


def test_an_empty_change_changes_nothing(client, stage):
    url = thresholds_url(stage)
    assert client.put(url, json=CHOSEN).status_code == 200

    assert client.put(url, json={}).json() == CHOSEN


def test_the_openapi_document_says_a_field_left_out_is_kept(client):
    document = client.get("/openapi.json").json()
    put = document["paths"]["/monitoring_api/use_cases/{name}/thresholds"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    schema = document["components"]["schemas"][body]

    said, described = " ".join(put["description"].split()), " ".join(schema["description"].split())
    assert "a field left out keeps its value" in said and "null turns its check off" in said
    assert "a field left out keeps it" in described
    # A default would say that a field left out takes it
    assert all("default" not in field for field in schema["properties"].values())


@given(first=changes, second=changes)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_each_field_is_the_last_value_given_for_it_else_the_original(
    client, stage_thresholds_url, first: dict[str, Any], second: dict[str, Any]
):
    # Given thresholds set to known values
    assert client.put(stage_thresholds_url, json=CHOSEN).status_code == 200

    # When two partial changes are applied one after the other
    for change in (first, second):
        answer = client.put(stage_thresholds_url, json=change)
        assert answer.status_code == 200, (change, answer.text)

    # Then every field holds the last value given for it, else the original
    assert client.get(stage_thresholds_url).json() == {**CHOSEN, **first, **second}


@pytest.fixture
def stage_thresholds_url(stage) -> str:
    """The thresholds URL of a use case of the test's own."""
    return thresholds_url(stage)
