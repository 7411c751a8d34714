"""queue_manager counts and times its requests at an open /metrics, by route template
and status."""

from __future__ import annotations

from tests.metrics_helpers import check_requests_are_counted


def test_requests_move_the_counters_of_their_route_and_status(client):
    check_requests_are_counted(
        client,
        "queue_manager",
        listed="/queue_manager/services",
        one=("/queue_manager/services/{name}", "/queue_manager/services/no-such-service"),
    )
