"""The metric history and open alerts as Prometheus gauges, read from monitoring_api's
own tables when Prometheus scrapes /metrics (so Grafana shows drift beside throughput).
Read at scrape time, not kept in gauges set where points are stored: another replica's
points and an acknowledgement made anywhere show up as they are in the store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import psycopg2
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg2.extensions import connection as Connection

from gits_common import errors
from gits_common.postgres import Database
from monitoring_api import store

log = logging.getLogger(__name__)
Values = list[tuple[str, str, float, datetime]]  # (use case, metric, value, time)
Alerts = list[tuple[str, str, int]]  # (use case, metric, how many open)

# Bounds of one scrape: use cases exported, history rows looked at per use case (a point
# holds a few use-case-wide values and one row a feature), (use case, metric) pairs of
# open alerts.
MAX_USE_CASES = 200
ROWS_PER_USE_CASE = 2000
MAX_ALERT_SERIES = 1000


class HistoryGauges(Collector):
    """A prometheus_client collector of four gauge families, read at each scrape:

    - `gits_monitoring_metric{use_case, metric}`: the newest value of each use-case-wide
      history metric (drift_share, anomaly_rate, mae, estimated_accuracy, ...; a
      feature's own drift score is left out, to keep the series few);
    - `gits_monitoring_last_point_timestamp_seconds{use_case}`: Unix time of its newest;
    - `gits_monitoring_open_alerts{use_case, metric}`: alerts not yet acknowledged;
    - `gits_monitoring_store_up`: 1, or 0 when the store could not be read (the other
      families are then left out of that scrape, which never fails for it).
    """

    def __init__(self, db: Database, *, max_use_cases: int = MAX_USE_CASES) -> None:
        self.db = db
        self.max_use_cases = max_use_cases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The families, read from the store now; none but `store_up` when it fails."""
        try:
            values, alerts = self.db.run(self._read)
        except (errors.Unavailable, psycopg2.Error) as exc:
            # A missing table (before the first start prepared it) or a store out of
            # reach must not cost the scrape its request metrics.
            log.warning("history gauges not read: %s", exc)
            yield _store_up(False)
            return
        yield _store_up(True)
        yield from _history_families(values)
        yield _alerts_family(alerts)

    def describe(self) -> list[GaugeMetricFamily]:
        """Nothing: registering it must not query the store."""
        return []

    def _read(self, conn: Connection) -> tuple[Values, Alerts]:
        values = store.select_newest_values(
            conn=conn, max_use_cases=self.max_use_cases, rows_per_use_case=ROWS_PER_USE_CASE
        )
        alerts = store.count_open_alerts(conn=conn, limit=MAX_ALERT_SERIES)
        return values, alerts


def _store_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "gits_monitoring_store_up",
        "1 when the metric history could be read at this scrape, else 0",
        value=1.0 if up else 0.0,
    )


def _history_families(values: Values) -> Iterator[GaugeMetricFamily]:
    """The newest value per (use case, metric), and each use case's newest time."""
    newest = GaugeMetricFamily(
        "gits_monitoring_metric",
        "Newest value of a use case's history metric (drift share, anomaly rate, realised "
        "and estimated performance, ...); per-feature values stay in the API",
        labels=["use_case", "metric"],
    )
    stamps: dict[str, float] = {}
    for use_case, metric, value, time in values:
        newest.add_metric([use_case, metric], value)
        stamps[use_case] = max(stamps.get(use_case, 0.0), time.timestamp())
    yield newest
    last = GaugeMetricFamily(
        "gits_monitoring_last_point_timestamp_seconds",
        "Unix time of a use case's newest history value",
        labels=["use_case"],
    )
    for use_case, stamp in stamps.items():
        last.add_metric([use_case], stamp)
    yield last


def _alerts_family(alerts: Alerts) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "gits_monitoring_open_alerts",
        "Alerts not yet acknowledged, by use case and metric",
        labels=["use_case", "metric"],
    )
    for use_case, metric, count in alerts:
        family.add_metric([use_case, metric], count)
    return family
