"""monitoring_api counts and times its requests at an open /metrics, by route template
and status."""

from __future__ import annotations

from tests.metrics_helpers import moved, parse

REQUESTS = "gits_http_requests_total"


def test_requests_move_the_counters_of_their_route_and_status(client):
    before = parse(client.get("/metrics", headers={"Authorization": ""}).text)

    client.get("/monitoring_api/alerts")
    client.get("/monitoring_api/use_cases/no_such_use_case/history")
    client.get("/monitoring_api/alerts", headers={"Authorization": "Bearer wrong"})

    after = parse(client.get("/metrics", headers={"Authorization": ""}).text)
    alerts = {"service": "monitoring_api", "handler": "/monitoring_api/alerts", "method": "GET"}
    assert moved(before, after, REQUESTS, **alerts, status="200") == 1
    assert moved(before, after, REQUESTS, **alerts, status="401") == 1
    history = {"service": "monitoring_api", "handler": "/monitoring_api/use_cases/{name}/history"}
    assert moved(before, after, REQUESTS, **history) == 1
    assert moved(before, after, "gits_http_request_duration_seconds_count", **alerts) == 2
