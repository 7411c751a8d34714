"""Retraining and explainer jobs, promotions and rollbacks, as retraining_api holds them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django_admin.apis import acting_client, client
from django_admin.site import checks
from django_admin.site.records import Field, complete, listed
from gits_common.retraining import HIGHER_IS_BETTER

API = "/retraining_api"
ACTIVE = frozenset({"queued", "running"})
# retraining_api's JobRead, as far as the pages use it; `request` and `result` differ
# by kind of job.
_JOB_FIELDS = (
    Field("id", checks.ident),
    Field("use_case", checks.text),
    Field("service", checks.name, required=False),
    Field("status", checks.text),
    Field("stage", checks.text, required=False),
    Field("percent", checks.count, required=False),
    Field("error", checks.text, required=False),
    Field("requested_by", checks.text),
    Field("created_at", checks.time),
    Field("started_at", checks.time, required=False),
    Field("finished_at", checks.time, required=False),
)
PROMOTION_FIELDS = (
    Field("action", checks.one_of("promote", "rollback")),
    Field("service", checks.name),
    Field("use_case", checks.text),
    Field("from_version", checks.text, nullable=True),
    Field("to_version", checks.text),
    Field("job_id", checks.ident, required=False),
    Field("requested_by", checks.text),
    Field("at", checks.time),
)
RETRAINING_FIELDS = (
    *_JOB_FIELDS,
    Field("request", checks.mapping, required=False),
    Field(
        "result",
        checks.nested(
            (
                Field("retrained_model_results", checks.mapping, required=False),
                Field("previous_model_results", checks.mapping, required=False),
                Field("champion", checks.text, required=False),
                Field("champion_error", checks.text, required=False),
                Field("metric", checks.text, required=False),
                Field("higher_is_better", checks.flag, required=False),
                Field("training_rows", checks.count, required=False),
                Field("holdout_rows", checks.count, required=False),
                Field("holdout", checks.mapping, required=False),
                Field("leaderboard", checks.objects, required=False),
                Field(
                    "decision",
                    checks.nested(
                        (
                            Field("promoted", checks.flag),
                            Field("reason", checks.text, required=False),
                        )
                    ),
                    required=False,
                ),
                Field(
                    "promotion",
                    checks.nested(
                        (
                            Field("from_version", checks.text, nullable=True),
                            Field("to_version", checks.text),
                            Field("requested_by", checks.text, required=False),
                        )
                    ),
                    required=False,
                ),
                # The challenger registered as a version without a promotion.
                Field("registered", checks.nested((Field("label", checks.text),)), required=False),
            )
        ),
        required=False,
    ),
)
EXPLAINER_FIELDS = (
    *_JOB_FIELDS,
    Field(
        "request",
        checks.nested(
            (
                Field("model", checks.text, required=False),
                Field("model_name", checks.name, required=False),
                Field("model_version", checks.version_ref, required=False),
                Field("job_id", checks.ident, required=False),  # a retraining job's challenger
                Field("data", checks.text, required=False),
            )
        ),
    ),
    Field(
        "result",
        checks.nested(
            (
                Field("model", checks.text, required=False),
                Field("data", checks.text, required=False),
                Field("rows_explained", checks.count, required=False),
                Field("rows_available", checks.count, required=False),
                Field("shap", checks.text, required=False),  # how, in words
                Field("seconds", checks.number, required=False),
            )
        ),
        required=False,
    ),
)
# An explainer page's <body> tag, whatever its attributes.
BODY_TAG = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
# Finished jobs looked at for a version's metrics (retraining_api's largest page).
SCORING_JOBS = 1000


@dataclass(frozen=True)
class Scoring:
    """One model version's metrics as a finished retraining job measured them: as its
    champion (the model its service used) or as its challenger (promoted or registered
    as that version), on the job's held-out rows."""

    job_id: int
    role: str  # "champion" or "challenger"
    model: str | None  # PyCaret's name of the model, e.g. "Linear Regression"
    metrics: dict[str, float | None]
    held_out: int | None
    at: datetime | None  # when the job finished


@dataclass(frozen=True)
class DifferenceRow:
    """One metric of two versions, the second's difference from the first, and which is
    better."""

    metric: str
    first: float | None
    second: float | None
    difference: float | None  # second minus first
    better: str  # "first", "second" or "" (a tie, or nothing to compare)


@dataclass(frozen=True)
class VersionComparison:
    """Two versions' stored metrics side by side. `same_job`: both were scored by one
    job on the same held-out rows; otherwise each by its newest job, on different rows."""

    first: Scoring | None
    second: Scoring | None
    same_job: bool
    rows: list[DifferenceRow]


@dataclass(frozen=True)
class MetricRow:
    """One metric of the champion and the challenger, and which one is better."""

    metric: str
    champion: float | None
    challenger: float | None
    better: str  # "champion", "challenger" or "" (a tie, or nothing to compare)
    decisive: bool  # the metric the job selects on


def retraining_job(record: Any) -> dict[str, Any]:
    """A retraining job as the pages use it (`records.complete`), and whether it is
    still queued or running."""
    job = complete(record, RETRAINING_FIELDS)
    job["active"] = job["status"] in ACTIVE
    return job


def explainer_job(record: Any) -> dict[str, Any]:
    """An explainer job as the pages use it: also the model it explains, in words
    (`model_label`), the retraining job whose challenger it is (`challenger_of`) and the
    table it explains (`data`)."""
    job = complete(record, EXPLAINER_FIELDS)
    job["active"] = job["status"] in ACTIVE
    request, result = job["request"] or {}, job["result"] or {}
    job["challenger_of"] = request.get("job_id")
    job["model_label"] = result.get("model") or request.get("model") or _model_label(request)
    job["data"] = result.get("data") or request.get("data")
    if job["model_label"] is None:
        job["problems"].append("request: names no model (model_name or job_id)")
    return job


def _model_label(request: dict[str, Any]) -> str | None:
    if request.get("job_id") is not None:
        return f"challenger of retraining job {request['job_id']}"
    if request.get("model_name") is not None:
        return f"{request['model_name']}:{request.get('model_version') or '?'}"
    return None


def promotion_record(record: Any) -> dict[str, Any]:
    """A promotion or rollback as the pages use it (`records.complete`)."""
    return complete(record, PROMOTION_FIELDS)


def jobs(*, use_case: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Retraining jobs, newest first; only those of `use_case` when given."""
    params: dict[str, Any] = {"limit": limit} | ({"use_case": use_case} if use_case else {})
    records = client("retraining_api").request("GET", f"{API}/jobs", params=params)
    return [retraining_job(r) for r in listed(records, api="retraining_api")]


def job(job_id: int) -> dict[str, Any]:
    """One retraining job, with its progress and result."""
    return retraining_job(client("retraining_api").request("GET", f"{API}/jobs/{job_id}"))


def start_job(request: dict[str, Any], *, user: Any) -> dict[str, Any]:
    """Start a retraining job (the contract's body) as `user` asked (`PermissionDenied`
    unless allowed to manage models); answers the queued job."""
    retraining_api = acting_client("retraining_api", user)
    return retraining_job(retraining_api.request("POST", f"{API}/jobs", json=request))


def promote(job_id: int, *, user: Any) -> dict[str, Any]:
    """Bind the job's challenger to its service, as `user` asked (`PermissionDenied`
    unless allowed to manage models)."""
    retraining_api = acting_client("retraining_api", user)
    body = {"requested_by": user.get_username()}
    path = f"{API}/jobs/{job_id}/promote"
    return promotion_record(retraining_api.request("POST", path, json=body))


def rollback(service: str, *, user: Any) -> dict[str, Any]:
    """Bind the service back to the model it used before its last promotion, as `user`
    asked (`PermissionDenied` unless allowed to manage models)."""
    retraining_api = acting_client("retraining_api", user)
    body = {"requested_by": user.get_username()}
    path = f"{API}/services/{service}/rollback"
    return promotion_record(retraining_api.request("POST", path, json=body))


def promotions(*, service: str | None = None) -> list[dict[str, Any]]:
    """Promotions and rollbacks, newest first."""
    params = {"service": service} if service else {}
    records = client("retraining_api").request("GET", f"{API}/promotions", params=params)
    return [promotion_record(r) for r in listed(records, api="retraining_api")]


def explainers(*, limit: int = 50) -> list[dict[str, Any]]:
    """Explainer jobs, newest first."""
    records = client("retraining_api").request("GET", f"{API}/explainers", params={"limit": limit})
    return [explainer_job(r) for r in listed(records, api="retraining_api")]


def explainer(job_id: int) -> dict[str, Any]:
    """One explainer job."""
    return explainer_job(client("retraining_api").request("GET", f"{API}/explainers/{job_id}"))


def start_explainer(request: dict[str, Any], *, user: Any) -> dict[str, Any]:
    """Build an explainer dashboard (or find the one already built for the same model and
    data), as `user` asked (`PermissionDenied` unless allowed to manage models: the APIs
    let only the admin role start jobs)."""
    retraining_api = acting_client("retraining_api", user)
    return explainer_job(retraining_api.request("POST", f"{API}/explainers", json=request))


def explainer_html(job_id: int) -> bytes:
    """The explainer dashboard's self-contained page; `Conflict` while it is being built."""
    return client("retraining_api").send("GET", f"{API}/explainers/{job_id}/html").content


def with_bar(page: bytes, bar: str) -> bytes:
    """The page with `bar` (HTML) first in its body, or first of all if it has no body."""
    found = BODY_TAG.search(page)
    at = found.end() if found else 0
    return page[:at] + bar.encode() + page[at:]


def comparison(result: dict[str, Any] | None) -> list[MetricRow]:
    """The champion's and the challenger's metrics side by side, on the same held-out rows."""
    if not result:
        return []
    challenger = result.get("retrained_model_results") or {}
    champion = result.get("previous_model_results") or {}
    decisive = result.get("metric")
    metrics = [k for k in challenger if k != "Model"]
    metrics += [k for k in champion if k != "Model" and k not in metrics]
    rows = []
    for metric in metrics:
        higher = metric in HIGHER_IS_BETTER
        if metric == decisive and isinstance(result.get("higher_is_better"), bool):
            higher = result["higher_is_better"]
        old, new = _number(champion.get(metric)), _number(challenger.get(metric))
        rows.append(MetricRow(metric, old, new, _better(old, new, higher), metric == decisive))
    return rows


def held_out_rows(result: dict[str, Any] | None) -> int | None:
    """How many held-out rows both models were scored on."""
    if not result:
        return None
    if isinstance(result.get("holdout_rows"), int):
        return int(result["holdout_rows"])
    parts = (result.get("holdout") or {}).values()
    if not parts or not all(isinstance(n, int) and not isinstance(n, bool) for n in parts):
        return None
    return sum(parts)


def _number(value: Any) -> float | None:
    try:
        return checks.number(value)
    except ValueError:
        return None


def _better(
    old: float | None,
    new: float | None,
    higher_is_better: bool,
    *,
    names: tuple[str, str] = ("champion", "challenger"),
) -> str:
    if old is None or new is None or old == new:
        return ""
    new_wins = new > old if higher_is_better else new < old
    return names[1] if new_wins else names[0]


def scorings(label: str, jobs: list[dict[str, Any]]) -> list[Scoring]:
    """Every measurement of the version `label` ("name:version") among finished `jobs`,
    in the jobs' order."""
    found = []
    for job in jobs:
        result = job["result"] or {}
        if job["status"] != "finished" or job["id"] is None:
            continue
        if result.get("champion") == label:
            found.append(_scoring(job, "champion", result.get("previous_model_results")))
        if label in _challenger_labels(result):
            found.append(_scoring(job, "challenger", result.get("retrained_model_results")))
    return [s for s in found if s is not None]


def compare_versions(first: str, second: str, jobs: list[dict[str, Any]]) -> VersionComparison:
    """The stored metrics of two versions: from the newest job that scored both on the
    same held-out rows, else each version's newest scoring."""
    ones, twos = scorings(first, jobs), scorings(second, jobs)
    shared = [(one, two) for one in ones for two in twos if one.job_id == two.job_id and one != two]
    same_job = bool(shared)
    one, two = shared[0] if shared else (next(iter(ones), None), next(iter(twos), None))
    return VersionComparison(one, two, same_job, _differences(one, two))


def version_jobs(use_case: str) -> list[dict[str, Any]]:
    """The use case's retraining jobs that may hold its versions' metrics, newest first."""
    return jobs(use_case=use_case, limit=SCORING_JOBS)


def _challenger_labels(result: dict[str, Any]) -> set[str]:
    labels = {(result.get("promotion") or {}).get("to_version")}
    labels.add((result.get("registered") or {}).get("label"))
    return {label for label in labels if isinstance(label, str)}


def _scoring(job: dict[str, Any], role: str, block: Any) -> Scoring | None:
    if not isinstance(block, dict):
        return None
    metrics = {k: _number(v) for k, v in block.items() if k != "Model"}
    model = block.get("Model") if isinstance(block.get("Model"), str) else None
    held_out = held_out_rows(job["result"])
    return Scoring(job["id"], role, model, metrics, held_out, job["finished_at"])


def _differences(first: Scoring | None, second: Scoring | None) -> list[DifferenceRow]:
    one = first.metrics if first else {}
    two = second.metrics if second else {}
    rows = []
    for metric in list(one) + [m for m in two if m not in one]:
        a, b = one.get(metric), two.get(metric)
        difference = None if a is None or b is None else b - a
        better = _better(a, b, metric in HIGHER_IS_BETTER, names=("first", "second"))
        rows.append(DifferenceRow(metric, a, b, difference, better))
    return rows
