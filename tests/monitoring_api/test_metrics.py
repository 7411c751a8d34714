"""monitoring_api counts and times its requests at an open /metrics, by route template
and status."""

from __future__ import annotations

from tests.metrics_helpers import check_requests_are_counted


def test_requests_move_the_counters_of_their_route_and_status(client):
    check_requests_are_counted(
        client,
        "monitoring_api",
        listed="/monitoring_api/alerts",
        one=(
            "/monitoring_api/use_cases/{name}/history",
            "/monitoring_api/use_cases/no_such_use_case/history",
        ),
    )
