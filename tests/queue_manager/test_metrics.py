"""queue_manager counts and times its requests at an open /metrics, by route template
and status."""

from __future__ import annotations

from tests.metrics_helpers import moved, parse

REQUESTS = "gits_http_requests_total"


def test_requests_move_the_counters_of_their_route_and_status(client):
    before = parse(client.get("/metrics", headers={"Authorization": ""}).text)

    client.get("/queue_manager/services")
    client.get("/queue_manager/services/no-such-service")
    client.get("/queue_manager/services/no-such-service")
    client.get("/queue_manager/services", headers={"Authorization": "Bearer wrong"})

    after = parse(client.get("/metrics", headers={"Authorization": ""}).text)
    listed = {"service": "queue_manager", "handler": "/queue_manager/services", "method": "GET"}
    assert moved(before, after, REQUESTS, **listed, status="200") == 1
    assert moved(before, after, REQUESTS, **listed, status="401") == 1
    one = {"service": "queue_manager", "handler": "/queue_manager/services/{name}"}
    assert moved(before, after, REQUESTS, **one, status="404") == 2
    assert moved(before, after, "gits_http_request_duration_seconds_count", **one) == 2
