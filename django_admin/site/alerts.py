"""Monitoring alerts as the admin acts on them: the open ones, acknowledging one (who and
when, kept by monitoring_api), the drift report of the window it judged, and the
retraining jobs started for its use case since."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from django_admin.apis import acting_client, client
from django_admin.site import checks, retraining
from django_admin.site.records import Field, complete, listed
from gits_common.monitoring import ANOMALY_RATE, DRIFT_METRICS

API = "/monitoring_api"
# monitoring_api's AlertRead, as far as the pages use it.
ALERT_FIELDS = (
    Field("id", checks.ident),
    Field("use_case", checks.text),
    Field("time", checks.time),
    Field("metric", checks.text),
    Field("feature", checks.text, nullable=True, required=False),
    Field("value", checks.number),
    Field("threshold", checks.number),
    Field("window_start", checks.time, nullable=True, required=False),
    Field("window_end", checks.time, nullable=True, required=False),
    Field("acknowledged_by", checks.text, nullable=True, required=False),
    Field("acknowledged_at", checks.time, nullable=True, required=False),
)
# The report an alert links to: performance for a performance drop, else drift (an
# anomaly rate rises with drifted sensors).
NOT_PERFORMANCE = DRIFT_METRICS | {ANOMALY_RATE}


def alert_record(record: Any) -> dict[str, Any]:
    """An alert as the pages use it (`records.complete`), with `what` in words, the
    `report_url` of its window and whether it is `open`."""
    alert = complete(record, ALERT_FIELDS)
    alert["what"] = alert_words(alert)
    alert["report_url"] = report_url(alert)
    alert["open"] = alert["acknowledged_at"] is None
    return alert


def open_alerts() -> list[dict[str, Any]]:
    """Every use case's alerts nobody acknowledged, newest first."""
    found = client("monitoring_api").request("GET", f"{API}/alerts")
    return [alert_record(a) for a in listed(found, api="monitoring_api")]


def use_case_alerts(use_case: str, *, days: int = 7) -> list[dict[str, Any]]:
    """A use case's alerts of the last `days` days, open or not, newest first."""
    since = (datetime.now().astimezone() - timedelta(days=days)).isoformat()
    path = f"{API}/use_cases/{use_case}/alerts"
    found = client("monitoring_api").request("GET", path, params={"since": since})
    return [alert_record(a) for a in listed(found, api="monitoring_api")][::-1]


def acknowledge(use_case: str, alert_id: int, *, user: Any) -> dict[str, Any]:
    """Acknowledge an alert as `user` (`PermissionDenied` unless allowed to manage
    models); the first acknowledgement stands. Answers the alert."""
    monitoring_api = acting_client("monitoring_api", user)
    path = f"{API}/use_cases/{use_case}/alerts/{alert_id}/acknowledge"
    return alert_record(monitoring_api.request("POST", path, json={"by": user.get_username()}))


def retrain(use_case: str, service: str | None, *, user: Any) -> dict[str, Any]:
    """Start a retraining job of the use case with its defaults (the service's model as
    champion; None: the use case's only service), as `user` asked; answers the job."""
    body = {"use_case": use_case, "service": service, "requested_by": user.get_username()}
    return retraining.start_job({k: v for k, v in body.items() if v is not None}, user=user)


def report_url(alert: dict[str, Any]) -> str | None:
    """The admin's report of the window the alert judged (None for alerts stored before
    windows were kept): drift for drift alerts, the task's performance otherwise."""
    start, end = alert.get("window_start"), alert.get("window_end")
    if start is None or end is None or alert.get("use_case") is None:
        return None
    params = {
        "use_case": alert["use_case"],
        "kind": "data_drift" if alert.get("metric") in NOT_PERFORMANCE else "model_performance",
        "reference": "training",
        "start": start.isoformat(),
        # The report's end is exclusive; the window's is its last row.
        "end": (end + timedelta(microseconds=1)).isoformat(),
    }
    return f"{reverse('monitoring_report')}?{urlencode(params)}"


def alert_words(alert: dict[str, Any]) -> str:
    """ "drift score of AH_data 0.73 crossed 0.6"."""
    what = str(alert.get("metric") or "?").replace("_", " ")
    if alert.get("feature"):
        what += f" of {alert['feature']}"
    value, threshold = alert.get("value"), alert.get("threshold")
    if value is None or threshold is None:
        return what
    return f"{what} {value:.3g} crossed {threshold:.3g}"
