"""Async HTTP clients for the GITS APIs. Error answers come back as the same domain
errors the API raised (NotFound, InvalidInput, ...), and a network failure or a 5xx as
`Unavailable`, so callers handle one set of exceptions."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from gits_common import errors
from gits_common.http import STATUS_CODES
from gits_common.jobs import JobCounts, JobRead
from gits_common.registry import (
    LATEST,
    AlgorithmRead,
    ModelStatusReport,
    NamedServiceCreate,
    ServiceCreate,
    ServiceRead,
    VersionRef,
)
from gits_common.schemas import Table, UseCase

ERRORS_BY_STATUS = {
    code: kind for kind, code in STATUS_CODES.items() if kind is not errors.DependencyFailed
}
# The answers that mean "not reachable right now" (RFC 9110: a gateway that could not
# reach, or waited too long for, the service behind it; a service that is down): only
# these, a refused connection and a timeout are retried. Any other error answer is
# about the request itself.
OUTAGE_STATUSES = frozenset({502, 503, 504})


def rows_from_frame(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: timestamps as ISO 8601 strings, missing values as None."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(lambda t: t.isoformat() if pd.notna(t) else None)
    records: list[dict[str, Any]] = out.astype(object).where(out.notna(), None).to_dict("records")
    return records


def unreachable(name: str, base_url: httpx.URL, exc: Exception) -> errors.Unavailable:
    """The error for an API that could not be reached at all."""
    return errors.Unavailable(f"{name} unreachable at {base_url}: {exc!r}")


def checked(name: str, response: httpx.Response) -> httpx.Response:
    """The response when it is a success, else the domain error the API reported: an
    outage status (502, 503, 504) as `Unavailable`, any other unknown status (a redirect,
    a 500, a 400, a 401) as `DependencyFailed`, which callers must not retry and APIs
    answer as 502 with the reason."""
    if response.is_success:
        return response
    try:
        body = response.json()
        detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    except ValueError:
        detail = response.text
    if response.status_code in OUTAGE_STATUSES:
        kind: type[errors.GitsError] = errors.Unavailable
    else:
        kind = ERRORS_BY_STATUS.get(response.status_code, errors.DependencyFailed)
    raise kind(f"{name} answered {response.status_code}: {str(detail)[:2000]}")


class SyncApiClient:
    """The blocking twin of `ApiClient`, for callers without an event loop (Django)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, name: str) -> None:
        self.name = name
        self._http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer (None for 204), or the domain error the API reported."""
        response = self.send(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    def send(
        self, method: str, path: str, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """The raw successful response, or the domain error the API reported. With
        `stream`, a success's body is not read yet: the caller reads it in pieces
        (`iter_bytes`) and must close the response."""
        try:
            if stream:
                request = self._http.build_request(method, path, **kwargs)
                response = self._http.send(request, stream=True)
                if not response.is_success:  # an error's body is short: read its reason
                    try:
                        response.read()
                    finally:
                        response.close()
            else:
                response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.name, self._http.base_url, exc) from exc
        return checked(self.name, response)

    def close(self) -> None:
        """Close the underlying connections."""
        self._http.close()


class ApiClient:
    """A bearer-authenticated JSON client for one GITS API."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, name: str) -> None:
        self.name = name
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer (None for 204), or the domain error the API reported."""
        response = await self.send(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw successful response, or the domain error the API reported."""
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.name, self._http.base_url, exc) from exc
        return checked(self.name, response)

    async def wait_until_up(self, seconds: float) -> None:
        """Poll /health until it answers 200, or raise `Unavailable` after `seconds`."""
        waiting = AsyncRetrying(
            retry=retry_if_exception_type(errors.Unavailable),
            stop=stop_after_delay(seconds),
            wait=wait_fixed(0.5),
            reraise=True,
        )
        await waiting(self.request, "GET", "/health")

    async def close(self) -> None:
        """Close the underlying connections."""
        await self._http.aclose()


class MlDataClient(ApiClient):
    """Client of ml_data_api."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        super().__init__(base_url, token, timeout=timeout, name="ml_data_api")

    async def register_use_case(self, use_case: UseCase) -> dict[str, Any]:
        """Register a use case (a no-op when the same definition is there)."""
        body = use_case.model_dump(mode="json")
        result: dict[str, Any] = await self.request("POST", "/ml_data_api/use_cases", json=body)
        return result

    async def use_case(self, name: str) -> UseCase:
        """A registered use case's definition."""
        body = await self.request("GET", f"{USE_CASES}/{_segment(name)}")
        return UseCase.model_validate(body["use_case"])

    async def insert_rows(
        self, use_case: str, table: Table, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Insert rows; returns {"inserted": n, "skipped": m}."""
        path = f"{USE_CASES}/{_segment(use_case)}/{table.value}/rows"
        result: dict[str, int] = await self.request("POST", path, json={"rows": rows})
        return result

    async def read_rows(self, use_case: str, table: Table, **params: Any) -> list[dict[str, Any]]:
        """Rows in time order (`last=N`, or `start`/`end`, and `limit`)."""
        path = f"{USE_CASES}/{_segment(use_case)}/{table.value}/rows"
        rows: list[dict[str, Any]] = (await self.request("GET", path, params=params))["rows"]
        return rows

    async def attach_labels(self, use_case: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
        """Attach true labels ({"message_id", "value"}) to production rows."""
        path = f"{USE_CASES}/{_segment(use_case)}/labels"
        result: dict[str, Any] = await self.request("POST", path, json={"labels": labels})
        return result

    async def delete_use_case(self, name: str) -> dict[str, Any]:
        """Delete a use case's tables, all their rows, and its registration; returns
        {"name": str, "tables": [table names dropped]}. Raises `NotFound` for an unknown
        name, `Conflict` (naming them) while a service in queue_manager uses it, and
        `Unavailable` when ml_data_api, or the queue_manager it asks, is unreachable:
        then nothing was deleted."""
        result: dict[str, Any] = await self.request("DELETE", f"{USE_CASES}/{_segment(name)}")
        return result

    async def use_cases(self) -> list[UseCase]:
        """Every registered use case."""
        body = await self.request("GET", "/ml_data_api/use_cases")
        return [UseCase.model_validate(record["use_case"]) for record in body]

    async def counts(self, use_case: str) -> dict[str, int]:
        """Rows per table of a use case."""
        path = f"{USE_CASES}/{_segment(use_case)}/counts"
        result: dict[str, int] = await self.request("GET", path)
        return result


class QueueManagerClient(ApiClient):
    """Client of queue_manager: answers come back as the shared shapes of
    gits_common.registry and gits_common.jobs."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        super().__init__(base_url, token, timeout=timeout, name="queue_manager")

    async def upload_algorithm(
        self,
        *,
        name: str,
        content: bytes,
        use_case: UseCase,
        description: str = "",
        uploaded_by: str = "api",
        sha256: str | None = None,
    ) -> AlgorithmRead:
        """Upload a model file as the next version of `name`. queue_manager checks it
        against the use case first (`InvalidInput` naming the failed check); the
        features it reads come from the model itself."""
        form = {
            "name": name,
            "use_case": use_case.name,
            "task": use_case.task.value,
            "description": description,
            "uploaded_by": uploaded_by,
        }
        if sha256 is not None:
            form["sha256"] = sha256
        files = {"file": (f"{name}.pkl", content, "application/octet-stream")}
        body = await self.request("POST", "/queue_manager/algorithms", data=form, files=files)
        return AlgorithmRead.model_validate(body)

    async def algorithm(self, name: str, version: int | str) -> AlgorithmRead:
        """One version of an algorithm (or "latest")."""
        body = await self.request("GET", f"{ALGORITHMS}/{_segment(name)}/versions/{version}")
        return AlgorithmRead.model_validate(body)

    async def download_algorithm(self, name: str, version: int) -> tuple[bytes, str]:
        """A model file's bytes and the SHA-256 queue_manager sent with them."""
        path = f"{ALGORITHMS}/{_segment(name)}/versions/{version}/file"
        response = await self.send("GET", path)
        return response.content, response.headers.get("X-Checksum-SHA256", "")

    async def verified_model(self, name: str, version: int) -> tuple[AlgorithmRead, bytes]:
        """An algorithm version's record and file; `ChecksumMismatch` unless the bytes
        match the SHA-256 queue_manager computed at upload (and the one sent with them).
        Check this before the bytes are unpickled."""
        record = await self.algorithm(name, version)
        content, sent = await self.download_algorithm(name, version)
        actual = hashlib.sha256(content).hexdigest()
        if actual != record.sha256 or (sent and actual != sent):
            raise errors.ChecksumMismatch(
                f"model file {name}:{version} does not match its checksum "
                f"(expected {record.sha256[:12]}..., got {actual[:12]}...)"
            )
        return record, content

    async def bind_service(
        self,
        name: str,
        *,
        routing_key: str,
        algorithm_name: str,
        algorithm_version: VersionRef = LATEST,
        use_case: str | None = None,
        updated_by: str = "api",
    ) -> ServiceRead:
        """Create a service or rebind it to another algorithm version of its use case."""
        body = ServiceCreate(
            routing_key=routing_key,
            algorithm_name=algorithm_name,
            algorithm_version=algorithm_version,
            use_case=use_case,
            updated_by=updated_by,
        )
        answer = await self.request(
            "PUT", f"{SERVICES}/{_segment(name)}", json=body.model_dump(mode="json")
        )
        return ServiceRead.model_validate(answer)

    async def create_service(
        self,
        name: str,
        *,
        routing_key: str,
        algorithm_name: str,
        algorithm_version: VersionRef = LATEST,
        use_case: str | None = None,
        updated_by: str = "api",
    ) -> ServiceRead:
        """Create a service; `Conflict` when one of that name exists."""
        body = NamedServiceCreate(
            name=name,
            routing_key=routing_key,
            algorithm_name=algorithm_name,
            algorithm_version=algorithm_version,
            use_case=use_case,
            updated_by=updated_by,
        )
        answer = await self.request("POST", SERVICES, json=body.model_dump(mode="json"))
        return ServiceRead.model_validate(answer)

    async def report_model_status(self, service: str, report: ModelStatusReport) -> None:
        """Tell queue_manager whether the service's model version loads and predicts."""
        await self.request(
            "PUT",
            f"{SERVICES}/{_segment(service)}/model_status",
            json=report.model_dump(mode="json"),
        )

    async def services(self) -> list[ServiceRead]:
        """Every service and the algorithm version it resolves to."""
        body = await self.request("GET", SERVICES)
        return [ServiceRead.model_validate(record) for record in body]

    async def service(self, name: str) -> ServiceRead:
        """A service and the algorithm version it resolves to; `NotFound` if none."""
        body = await self.request("GET", f"{SERVICES}/{_segment(name)}")
        return ServiceRead.model_validate(body)

    async def create_jobs(self, jobs: list[dict[str, Any]]) -> list[JobRead]:
        """Create the jobs (JobCreate's fields) that do not exist yet; every job as
        stored, in request order."""
        body = await self.request("POST", f"{JOBS}/batch", json={"jobs": jobs})
        return [JobRead.model_validate(job) for job in body["jobs"]]

    async def record_jobs(self, jobs: list[dict[str, Any]]) -> int:
        """Write jobs (JobRecord's fields) in their final state in one request; how many."""
        body = await self.request("PUT", f"{JOBS}/batch", json={"jobs": jobs})
        return int(body["recorded"])

    async def update_jobs(self, updates: list[dict[str, Any]]) -> list[JobRead]:
        """Move jobs (JobUpdate's fields) to a new status with their result or reason."""
        body = await self.request("PATCH", f"{JOBS}/batch", json={"jobs": updates})
        return [JobRead.model_validate(job) for job in body["jobs"]]

    async def job_counts(self, service: str | None = None) -> JobCounts:
        """Jobs per status."""
        params = {"service": service} if service else {}
        body = await self.request("GET", f"{JOBS}/counts", params=params)
        return JobCounts.model_validate(body)


USE_CASES = "/ml_data_api/use_cases"
ALGORITHMS = "/queue_manager/algorithms"
SERVICES = "/queue_manager/services"
JOBS = "/queue_manager/jobs"


def _segment(name: str) -> str:
    """A name as one URL path segment: `a?b` or `../x` must not become another route."""
    return quote(name, safe="")
