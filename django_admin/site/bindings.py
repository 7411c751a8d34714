"""Services (which algorithm version each service's workers use) as queue_manager holds
them, and what the workers really used, read from their recent jobs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django_admin.apis import acting_client, client
from django_admin.site import checks
from django_admin.site.failures import in_words
from django_admin.site.records import Field, complete, listed

SERVICES = "/queue_manager/services"
LATEST = "latest"
# queue_manager's ServiceRead, as far as the pages use it. A null resolved version (and
# so checksum) means the bound version is gone: a state of its own, not a missing field.
SERVICE_FIELDS = (
    Field("name", checks.name),
    Field("routing_key", checks.text),
    Field("use_case", checks.text),
    Field("algorithm_name", checks.name),
    Field("algorithm_version", checks.version_ref),
    Field("resolved_version", checks.ident, nullable=True),
    Field("sha256", checks.text, nullable=True),
    Field("features", checks.texts),
    Field("updated_at", checks.time),
    Field("updated_by", checks.text, nullable=True),
    Field("announced", checks.flag, required=False),
    # The workers' word on the resolved version: does it load and predict, and why not.
    Field(
        "model_status",
        checks.nested(
            (
                Field("usable", checks.flag),
                Field("reason", checks.text, required=False),
                Field("worker", checks.text, required=False),
                Field("reported_at", checks.time, required=False),
            )
        ),
        required=False,
    ),
)
# queue_manager's jobs, as far as what-each-worker-used needs them.
JOB_FIELDS = (
    Field("last_status", checks.text),
    Field("model_version", checks.text, required=False),
    Field(
        "metadata",
        checks.nested(
            (
                Field("worker", checks.text, required=False),
                Field("start_date", checks.time),
                Field("end_date", checks.time, required=False),
            )
        ),
    ),
)
NEVER = datetime.min.replace(tzinfo=UTC)  # the time of a job that has none
# queue_manager's refusal to delete a service: "<n> message(s) wait (...)".
_WAITING = re.compile(r"\b(\d+) message\(s\) wait\b")


@dataclass(frozen=True)
class Binding:
    """What the bind form asks for: the algorithm version a service's workers use."""

    routing_key: str
    algorithm_name: str
    algorithm_version: int | str  # a version number or "latest"
    updated_by: str


@dataclass(frozen=True)
class WorkerUsage:
    """The model one worker replica used for its newest job of a service."""

    worker: str
    model_version: str | None  # "algorithm:version", None until it finished a job
    used_at: datetime | None  # None when none of its jobs carries a time
    last_status: str | None
    jobs: int  # of the jobs looked at


@dataclass(frozen=True)
class Usage:
    """What each worker used, and what the job records it came from lacked."""

    workers: list[WorkerUsage]
    problems: list[str] = field(default_factory=list)  # "why (n jobs)"


def service_record(record: Any) -> dict[str, Any]:
    """One service as the pages use it (`records.complete`), the workers' reason for an
    unusable model in words (`failures.in_words`: no exception class names)."""
    found = complete(record, SERVICE_FIELDS)
    status = found.get("model_status")
    if isinstance(status, dict) and isinstance(status.get("reason"), str):
        found["model_status"] = {**status, "reason": in_words(status["reason"])}
    return found


def services(*, use_case: str | None = None) -> list[dict[str, Any]]:
    """Every service and the algorithm version it resolves to now, by name; only those
    of `use_case` when given."""
    records = client("queue_manager").request("GET", SERVICES)
    found = [service_record(r) for r in listed(records, api="queue_manager")]
    if use_case:
        found = [r for r in found if r["use_case"] == use_case]
    return sorted(found, key=lambda r: (r["name"] is None, r["name"] or ""))


def service(name: str) -> dict[str, Any]:
    """One service; `NotFound` when queue_manager has no such service."""
    return service_record(client("queue_manager").request("GET", f"{SERVICES}/{name}"))


def create_service(name: str, binding: Binding, *, user: Any) -> dict[str, Any]:
    """Create a service, as `user` asked (`PermissionDenied` unless allowed to manage
    models); `Conflict` when one of that name exists (rebinding is `rebind_service`,
    never a side effect of creating). queue_manager announces it."""
    queue_manager = acting_client("queue_manager", user)
    body = {"name": name, **_body(binding)}
    return service_record(queue_manager.request("POST", SERVICES, json=body))


def rebind_service(
    name: str, binding: Binding, *, use_case: str | None, user: Any
) -> tuple[dict[str, Any], bool]:
    """Bind an existing service to another algorithm version, as `user` asked
    (`PermissionDenied` unless allowed to manage models); the record and whether it was
    created after all (deleted meanwhile). `use_case` is the service's: queue_manager
    refuses an algorithm of another use case, with both named."""
    queue_manager = acting_client("queue_manager", user)
    body = _body(binding) | ({"use_case": use_case} if use_case else {})
    response = queue_manager.send("PUT", f"{SERVICES}/{name}", json=body)
    return service_record(response.json()), response.status_code == 201


def delete_service(name: str, *, user: Any) -> int:
    """Delete a service's binding and its queue, as `user` asked (`PermissionDenied`
    unless allowed to manage models). queue_manager refuses (`Conflict`, saying how many)
    while messages wait in the queue, and keeps a dead-letter queue that holds messages:
    how many it kept."""
    queue_manager = acting_client("queue_manager", user)
    response = queue_manager.send("DELETE", f"{SERVICES}/{name}")
    kept = response.headers.get("X-Dead-Letters-Kept", "")
    return int(kept) if kept.isdigit() else 0


def waiting_messages(refusal: str) -> int | None:
    """How many messages queue_manager's refusal to delete a service says wait in its
    queue, or None when it does not say."""
    found = _WAITING.search(refusal)
    return int(found[1]) if found else None


def _body(binding: Binding) -> dict[str, Any]:
    return {
        "routing_key": binding.routing_key,
        "algorithm_name": binding.algorithm_name,
        "algorithm_version": binding.algorithm_version,
        "updated_by": binding.updated_by,
    }


def used_model(record: dict[str, Any]) -> str | None:
    """The "algorithm:version" a service resolves to now."""
    if record["resolved_version"] is None or record["algorithm_name"] is None:
        return None
    return f"{record['algorithm_name']}:{record['resolved_version']}"


def worker_usage(service_name: str, *, limit: int = 500) -> Usage:
    """Per worker, the model of its newest job among the service's `limit` newest."""
    jobs = client("queue_manager").request(
        "GET", "/queue_manager/jobs", params={"service": service_name, "limit": limit}
    )
    return usage_from_jobs(listed(jobs, api="queue_manager"))


def usage_from_jobs(jobs: list[Any]) -> Usage:
    """Group jobs by `metadata.worker`: each worker's newest model version and when."""
    by_worker: dict[str, list[dict[str, Any]]] = {}
    problems: dict[str, int] = {}
    for job in (complete(j, JOB_FIELDS) for j in jobs):
        for problem in job["problems"]:
            problems[problem] = problems.get(problem, 0) + 1
        worker = (job["metadata"] or {}).get("worker") or "(unknown)"
        by_worker.setdefault(worker, []).append(job)
    workers = [_usage(worker, group) for worker, group in sorted(by_worker.items())]
    return Usage(workers, [f"{problem} ({n} jobs)" for problem, n in problems.items()])


def _when(job: dict[str, Any]) -> datetime | None:
    meta = job["metadata"] or {}
    when: datetime | None = meta.get("end_date") or meta.get("start_date")
    return when


def _usage(worker: str, jobs: list[dict[str, Any]]) -> WorkerUsage:
    def newest_of(group: list[dict[str, Any]]) -> dict[str, Any]:
        return max(group, key=lambda job: _when(job) or NEVER)

    newest = newest_of(jobs)
    # The newest job may still be running with no model yet: the model is that of the
    # newest job that names one.
    with_model = [job for job in jobs if job["model_version"]]
    used = newest_of(with_model) if with_model else None
    return WorkerUsage(
        worker=worker,
        model_version=used["model_version"] if used else None,
        used_at=_when(used or newest),
        last_status=newest["last_status"],
        jobs=len(jobs),
    )
