"""ml_data_api counts and times its requests at an open /metrics, by route template and
status: what a dashboard shows beside the workers' throughput."""

from __future__ import annotations

from tests.metrics_helpers import moved, parse

REQUESTS = "gits_http_requests_total"


def test_requests_move_the_counters_of_their_route_and_status(client, sensors):
    # Given a scrape
    before = parse(client.get("/metrics", headers={"Authorization": ""}).text)

    # When a use case is read, one that does not exist is asked for, and a wrong token tried
    client.get(f"/ml_data_api/use_cases/{sensors.name}")
    client.get("/ml_data_api/use_cases/no_such_use_case")
    client.get("/ml_data_api/use_cases", headers={"Authorization": "Bearer wrong"})

    # Then the next scrape (open to all, like /health) has counted each by route and status
    after = parse(client.get("/metrics", headers={"Authorization": ""}).text)
    one = {"service": "ml_data_api", "handler": "/ml_data_api/use_cases/{name}", "method": "GET"}
    assert moved(before, after, REQUESTS, **one, status="200") == 1
    assert moved(before, after, REQUESTS, **one, status="404") == 1
    listed = {"service": "ml_data_api", "handler": "/ml_data_api/use_cases", "status": "401"}
    assert moved(before, after, REQUESTS, **listed) == 1
    durations = "gits_http_request_duration_seconds_count"
    assert moved(before, after, durations, **one) == 2
