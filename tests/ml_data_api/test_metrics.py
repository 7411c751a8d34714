"""ml_data_api counts and times its requests at an open /metrics, by route template and
status: what a dashboard shows beside the workers' throughput."""

from __future__ import annotations

from tests.metrics_helpers import check_requests_are_counted


def test_requests_move_the_counters_of_their_route_and_status(client):
    check_requests_are_counted(
        client,
        "ml_data_api",
        listed="/ml_data_api/use_cases",
        one=("/ml_data_api/use_cases/{name}", "/ml_data_api/use_cases/no_such_use_case"),
    )
