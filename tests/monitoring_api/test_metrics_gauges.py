"""monitoring_api's /metrics holds its metric history as gauges (the newest value of each
use case and metric, and when it was taken) and its open alerts, read from the store at
each scrape, so Grafana can show drift beside throughput."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from monitoring_api import store
from tests.metrics_helpers import labels_of, parse, value

METRIC = "gits_monitoring_metric"
OPEN_ALERTS = "gits_monitoring_open_alerts"


def test_history_values_and_open_alerts_are_gauges_read_at_each_scrape(app, client):
    # Given a use case without history yet
    name = f"gauges_{uuid.uuid4().hex[:8]}"
    db = app.state.watch.db
    before = parse(client.get("/metrics").text)
    assert not [s for s in labels_of(before, METRIC) if s["use_case"] == name]

    # When two history points are stored (the mean error only in the older one), and the
    # newer one raises a drift alert
    older = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    newer = older + timedelta(minutes=1)
    values = [("drift_share", None, 0.1), ("mae", None, 5.0), ("drift_score", "T_data_1_1", 0.9)]
    db.run(lambda c: store.insert_metrics(conn=c, use_case=name, time=older, values=values))
    db.run(
        lambda c: store.insert_metrics(
            conn=c, use_case=name, time=newer, values=[("drift_share", None, 0.6)]
        )
    )
    alert = {"metric": "drift_share", "feature": None, "value": 0.6, "threshold": 0.5}
    (stored,) = db.run(
        lambda c: store.insert_alerts(
            conn=c,
            use_case=name,
            time=newer,
            window=(None, None),
            alerts=[{**alert, "delivery": "none"}],
        )
    )

    # Then the next scrape has the newest value of each metric, its time and the alert
    after = parse(client.get("/metrics").text)
    assert value(after, "gits_monitoring_store_up") == 1
    assert value(after, METRIC, use_case=name, metric="drift_share") == 0.6
    assert value(after, METRIC, use_case=name, metric="mae") == 5.0
    mine = [s for s in labels_of(after, METRIC) if s["use_case"] == name]
    assert sorted(s["metric"] for s in mine) == ["drift_share", "mae"]  # no feature's series
    stamp = value(after, "gits_monitoring_last_point_timestamp_seconds", use_case=name)
    assert stamp == newer.timestamp()
    assert value(after, OPEN_ALERTS, use_case=name, metric="drift_share") == 1

    # And once the alert is acknowledged, it is no longer open: its series goes to 0
    # (a series that vanished would read as "no data", not as "nothing open")
    answer = client.post(
        f"/monitoring_api/use_cases/{name}/alerts/{stored['id']}/acknowledge", json={"by": "ops"}
    )
    assert answer.status_code == 200, answer.text
    acknowledged = parse(client.get("/metrics").text)
    assert value(acknowledged, OPEN_ALERTS, use_case=name) == 0
    assert (
        labels_of(acknowledged, OPEN_ALERTS).count({"use_case": name, "metric": "drift_share"}) == 1
    )
