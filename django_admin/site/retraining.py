"""Retraining and explainer jobs, promotions and rollbacks, as retraining_api holds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_admin.apis import client
from django_admin.site.catalog import with_times

API = "/retraining_api"
ACTIVE = frozenset({"queued", "running"})
JOB_TIMES = ("created_at", "started_at", "finished_at")
# Metrics PyCaret reports where a higher value is better; the others are errors.
HIGHER_IS_BETTER = frozenset({"R2", "Accuracy", "AUC", "Recall", "Prec.", "F1", "Kappa", "MCC"})


@dataclass(frozen=True)
class MetricRow:
    """One metric of the champion and the challenger, and which one is better."""

    metric: str
    champion: float | None
    challenger: float | None
    better: str  # "champion", "challenger" or "" (a tie, or nothing to compare)
    decisive: bool  # the metric the job selects on


def _job(record: dict[str, Any]) -> dict[str, Any]:
    out = with_times(record, *JOB_TIMES)
    out["active"] = out.get("status") in ACTIVE
    return out


def jobs(*, limit: int = 50) -> list[dict[str, Any]]:
    """Retraining jobs, newest first."""
    records = client("retraining_api").request("GET", f"{API}/jobs", params={"limit": limit})
    return [_job(r) for r in records]


def job(job_id: int) -> dict[str, Any]:
    """One retraining job, with its progress and result."""
    return _job(client("retraining_api").request("GET", f"{API}/jobs/{job_id}"))


def start_job(request: dict[str, Any]) -> dict[str, Any]:
    """Start a retraining job (the contract's body); answers the queued job."""
    return _job(client("retraining_api").request("POST", f"{API}/jobs", json=request))


def promote(job_id: int, *, requested_by: str) -> dict[str, Any]:
    """Bind the job's challenger to its service."""
    body = {"requested_by": requested_by}
    promotion: dict[str, Any] = client("retraining_api").request(
        "POST", f"{API}/jobs/{job_id}/promote", json=body
    )
    return promotion


def rollback(service: str, *, requested_by: str) -> dict[str, Any]:
    """Bind the service back to the model it used before its last promotion."""
    body = {"requested_by": requested_by}
    promotion: dict[str, Any] = client("retraining_api").request(
        "POST", f"{API}/services/{service}/rollback", json=body
    )
    return promotion


def promotions(*, service: str | None = None) -> list[dict[str, Any]]:
    """Promotions and rollbacks, newest first."""
    params = {"service": service} if service else {}
    records = client("retraining_api").request("GET", f"{API}/promotions", params=params)
    return [with_times(r, "at") for r in records]


def explainers(*, limit: int = 50) -> list[dict[str, Any]]:
    """Explainer jobs, newest first."""
    records = client("retraining_api").request("GET", f"{API}/explainers", params={"limit": limit})
    return [_job(r) for r in records]


def explainer(job_id: int) -> dict[str, Any]:
    """One explainer job."""
    return _job(client("retraining_api").request("GET", f"{API}/explainers/{job_id}"))


def start_explainer(request: dict[str, Any]) -> dict[str, Any]:
    """Build an explainer dashboard (or find the one already built for the same model and
    data)."""
    return _job(client("retraining_api").request("POST", f"{API}/explainers", json=request))


def explainer_html(job_id: int) -> bytes:
    """The explainer dashboard's self-contained page; `Conflict` while it is being built."""
    return client("retraining_api").send("GET", f"{API}/explainers/{job_id}/html").content


def comparison(result: dict[str, Any] | None) -> list[MetricRow]:
    """The champion's and the challenger's metrics side by side, on the same held-out rows."""
    if not result:
        return []
    challenger = result.get("retrained_model_results") or {}
    champion = result.get("previous_model_results") or {}
    decisive = result.get("metric")
    names = [k for k in challenger if k != "Model"]
    names += [k for k in champion if k != "Model" and k not in names]
    rows = []
    for name in names:
        higher = name in HIGHER_IS_BETTER
        if name == decisive and isinstance(result.get("higher_is_better"), bool):
            higher = result["higher_is_better"]
        old, new = _number(champion.get(name)), _number(challenger.get(name))
        rows.append(MetricRow(name, old, new, _better(old, new, higher), name == decisive))
    return rows


def held_out_rows(result: dict[str, Any] | None) -> int | None:
    """How many held-out rows both models were scored on."""
    if not result:
        return None
    if isinstance(result.get("holdout_rows"), int):
        return int(result["holdout_rows"])
    holdout = result.get("holdout")
    return sum(holdout.values()) if isinstance(holdout, dict) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _better(old: float | None, new: float | None, higher_is_better: bool) -> str:
    if old is None or new is None or old == new:
        return ""
    new_wins = new > old if higher_is_better else new < old
    return "challenger" if new_wins else "champion"
