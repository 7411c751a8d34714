"""Services (which algorithm version each service's workers use) as queue_manager holds
them, and what the workers really used, read from their recent jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django_admin.apis import client
from django_admin.site.catalog import with_times

SERVICES = "/queue_manager/services"
LATEST = "latest"


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
    used_at: datetime
    last_status: str
    jobs: int  # of the jobs looked at


def services() -> list[dict[str, Any]]:
    """Every service and the algorithm version it resolves to now, by name."""
    records = client("queue_manager").request("GET", SERVICES)
    return sorted((with_times(r, "updated_at") for r in records), key=lambda r: r["name"])


def service(name: str) -> dict[str, Any]:
    """One service; `NotFound` when queue_manager has no such service."""
    record = client("queue_manager").request("GET", f"{SERVICES}/{name}")
    return with_times(record, "updated_at")


def bind_service(name: str, binding: Binding) -> tuple[dict[str, Any], bool]:
    """Create the service or rebind it; the record and whether it was created.
    queue_manager announces the change, so running workers swap models."""
    body = {
        "routing_key": binding.routing_key,
        "algorithm_name": binding.algorithm_name,
        "algorithm_version": binding.algorithm_version,
        "updated_by": binding.updated_by,
    }
    response = client("queue_manager").send("PUT", f"{SERVICES}/{name}", json=body)
    return with_times(response.json(), "updated_at"), response.status_code == 201


def used_model(record: dict[str, Any]) -> str | None:
    """The "algorithm:version" a service resolves to now."""
    if record.get("resolved_version") is None:
        return None
    return f"{record['algorithm_name']}:{record['resolved_version']}"


def worker_usage(service_name: str, *, limit: int = 500) -> list[WorkerUsage]:
    """Per worker, the model of its newest job among the service's `limit` newest."""
    jobs = client("queue_manager").request(
        "GET", "/queue_manager/jobs", params={"service": service_name, "limit": limit}
    )
    return usage_from_jobs(jobs)


def usage_from_jobs(jobs: list[dict[str, Any]]) -> list[WorkerUsage]:
    """Group jobs by `metadata.worker`: each worker's newest model version and when."""
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        worker = job["metadata"].get("worker") or "(unknown)"
        by_worker.setdefault(worker, []).append(job)
    return [_usage(worker, group) for worker, group in sorted(by_worker.items())]


def _usage(worker: str, jobs: list[dict[str, Any]]) -> WorkerUsage:
    def when(job: dict[str, Any]) -> datetime:
        meta = job["metadata"]
        return datetime.fromisoformat(meta.get("end_date") or meta["start_date"])

    newest = max(jobs, key=when)
    # The newest job may still be running with no model yet: the model is that of the
    # newest job that names one.
    with_model = [job for job in jobs if job.get("model_version")]
    used = max(with_model, key=when) if with_model else None
    return WorkerUsage(
        worker=worker,
        model_version=used["model_version"] if used else None,
        used_at=when(used or newest),
        last_status=newest["last_status"],
        jobs=len(jobs),
    )
