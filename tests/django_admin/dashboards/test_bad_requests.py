"""Requests to the Dash endpoints that no dashboard can answer are 404 or 400, never a
500 (rdrf#2274: django-plotly-dash raises KeyError for an unknown app; aiormq PR#141:
RabbitMQ refuses queue names over 255 bytes)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from django_admin.dashboards.dash_apps.main import NAME as MAIN
from django_admin.dashboards.deadletters import dead_letter_count


@pytest.mark.parametrize("tail", ["", "_dash-layout", "_dash-dependencies"])
def test_an_unknown_dashboard_is_404(browser: Client, tail: str) -> None:
    response = browser.get(f"/django_plotly_dash/app/nope/{tail}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"output": "no-such.children", "inputs": []}, {"output": 5}],
    ids=["empty", "unknown-output", "wrong-type"],
)
def test_a_callback_request_that_does_not_fit_the_dashboard_is_400(browser: Client, body) -> None:
    url = f"/django_plotly_dash/app/{MAIN}/_dash-update-component"
    response = browser.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code in (400, 204), response.content[:300]


@pytest.mark.parametrize("queue", ["é" * 200 + ".dead", "x\x00y.dead", "not-a-dead-letter-queue"])
def test_a_queue_name_no_service_can_have_counts_nothing(queue: str) -> None:
    assert dead_letter_count("amqp://nobody:nothing@127.0.0.1:9/", queue) is None
