"""What an operator does with an alert: read the window it judged, see the newest point
at a glance, acknowledge it (who and when, the first acknowledgement standing), and list
every use case's open alerts in one request."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.monitoring_api.conftest import DRIFTED, sampled
from tests.monitoring_api.test_history import stream


def test_an_alert_keeps_its_window_and_is_acknowledged_once(client, stage, webhook):
    # Given a drifting stream that raised alerts
    use_case, points = stream(client, stage, DRIFTED, webhook.url)
    alerts = client.get(f"/monitoring_api/use_cases/{use_case.name}/alerts").json()
    assert alerts and all(a["acknowledged_by"] is None for a in alerts)

    # Then each alert names the window of production rows its point judged
    for alert in alerts:
        point = next(p for p in points if any(a["id"] == alert["id"] for a in p["alerts"]))
        assert (alert["window_start"], alert["window_end"]) == (
            point["window_start"],
            point["window_end"],
        )
        assert datetime.fromisoformat(alert["window_start"]) < datetime.fromisoformat(
            alert["window_end"]
        )
    # And the webhook got what the alert says, not how it is being handled
    assert all("acknowledged_by" not in body for body in webhook.received)

    # When an operator acknowledges one, and another tries again later
    first = alerts[0]
    url = f"/monitoring_api/use_cases/{use_case.name}/alerts/{first['id']}/acknowledge"
    acknowledged = client.post(url, json={"by": "ops-ana"})
    again = client.post(url, json={"by": "ops-ben"})

    # Then the first acknowledgement stands, with when, and the alert is no longer open
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["acknowledged_by"] == "ops-ana"
    assert acknowledged.json()["acknowledged_at"] is not None
    assert again.json()["acknowledged_by"] == "ops-ana"
    assert again.json()["acknowledged_at"] == acknowledged.json()["acknowledged_at"]
    open_ids = {a["id"] for a in client.get("/monitoring_api/alerts").json()}
    assert first["id"] not in open_ids
    assert {a["id"] for a in alerts[1:]} <= open_ids

    # And the newest point's values are one request away
    latest = client.get(f"/monitoring_api/use_cases/{use_case.name}/history/latest").json()
    assert {(v["metric"], v["feature"]) for v in latest["values"]} == {
        (v["metric"], v["feature"]) for v in points[-1]["values"]
    }


def test_an_alert_is_acknowledged_only_through_its_own_use_case(client, stage):
    # Given a use case with no alert at all
    use_case = stage.use_case("ack")
    stage.produce(use_case, sampled(DRIFTED).iloc[:50])

    # Then acknowledging an alert it does not have, or with nobody named, is refused
    missing = client.post(
        f"/monitoring_api/use_cases/{use_case.name}/alerts/1/acknowledge", json={"by": "ops"}
    )
    assert missing.status_code == 404
    assert f"use case {use_case.name} has no alert 1" in missing.json()["detail"]
    nobody = client.post(
        f"/monitoring_api/use_cases/{use_case.name}/alerts/1/acknowledge", json={"by": ""}
    )
    assert nobody.status_code == 422 and "by" in nobody.json()["detail"]
    # And its newest point is none yet, with why
    latest = client.get(f"/monitoring_api/use_cases/{use_case.name}/history/latest").json()
    assert latest["values"] == [] and "no history point yet" in latest["reason"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(by=st.text(max_size=200))
def test_any_name_is_stored_as_given_or_refused_naming_the_field(client, by):
    # An unknown alert of an unknown use case: whatever the name, a 404 or a 422, never 500
    response = client.post(
        "/monitoring_api/use_cases/no_such_case/alerts/9223372036854775807/acknowledge",
        json={"by": by},
    )
    assert response.status_code in {404, 422}, response.text
    if response.status_code == 422:
        assert "by" in response.json()["detail"]
