"""monitoring_api's query and path values: what its stores cannot take is a 4xx naming
it, never a 500 (issue #10: offsets of 16 hours or more, year-1 times with an offset,
NUL characters in path parameters, repeated parameters)."""

from __future__ import annotations

import pytest

BASE = "/monitoring_api/use_cases"
TIMES = {"year-1": "0001-01-01T00:00:00+01:00", "year-9999": "9999-12-31T23:00:00-05:00"}
TIME_PARAMETERS = [
    ("reports/data_drift", "start"),
    ("reports/data_drift", "end"),
    ("history", "start"),
    ("history", "end"),
    ("alerts", "since"),
]


@pytest.mark.parametrize(("route", "parameter"), TIME_PARAMETERS)
@pytest.mark.parametrize("time", TIMES.values(), ids=TIMES.keys())
def test_times_outside_what_is_kept_are_422_naming_the_parameter(client, route, parameter, time):
    response = client.get(f"{BASE}/pq/{route}", params={parameter: time})
    assert response.status_code == 422, response.text
    assert parameter in response.json()["detail"]


@pytest.mark.parametrize(("route", "parameter"), TIME_PARAMETERS)
@pytest.mark.parametrize("offset", ["+16:00", "-23:59", "+00:01"])
def test_any_offset_a_time_can_have_is_taken(client, route, parameter, offset):
    # PostgreSQL takes offsets up to 15:59; times are turned to UTC before they reach it
    response = client.get(f"{BASE}/pq/{route}", params={parameter: f"2025-01-01T00:00:00{offset}"})
    assert response.status_code in (200, 404), response.text  # pq has no rows: 404 for reports


@pytest.mark.parametrize("route", ["reports/data_drift", "history", "alerts", "thresholds"])
@pytest.mark.parametrize("name", ["a%00b", "..%2Fx", "UPPER", "x" * 41])
def test_names_that_are_not_use_case_names_are_4xx(client, route, name):
    response = client.get(f"{BASE}/{name}/{route}")
    assert 400 <= response.status_code < 500, response.text


def test_a_repeated_window_parameter_is_refused_naming_it(client):
    window = "start=2025-01-01T00:00:00Z&end=2025-01-02T00:00:00Z&start=2025-01-01T06:00:00Z"
    response = client.get(f"{BASE}/pq/history?{window}")
    assert response.status_code == 422
    assert "start" in response.json()["detail"]


@pytest.mark.parametrize("metric", ["%00", "a%00b", "DROP TABLE", "x" * 65])
def test_a_metric_name_that_is_no_metric_name_is_422(client, metric):
    # psycopg2#1243: a NUL in a query value gave a 500
    response = client.get(f"{BASE}/pq/history?metric={metric}")
    assert response.status_code == 422, response.text
    assert "metric" in response.json()["detail"]
