"""Async HTTP clients for the GITS APIs. Error answers come back as the same domain
errors the API raised (NotFound, InvalidInput, ...), and a network failure or a 5xx as
`Unavailable`, so callers handle one set of exceptions."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import httpx
import pandas as pd

from gits_common import errors
from gits_common.http import STATUS_CODES
from gits_common.schemas import Table, UseCase

ERRORS_BY_STATUS = {code: kind for kind, code in STATUS_CODES.items()}


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
    """The response when it is a success, else the domain error the API reported (a
    5xx or an unknown failure as `Unavailable`)."""
    if response.is_success:
        return response
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    default = errors.Unavailable if response.status_code >= 500 else errors.GitsError
    kind = ERRORS_BY_STATUS.get(response.status_code, default)
    raise kind(f"{name} answered {response.status_code}: {detail}")


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

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw successful response, or the domain error the API reported."""
        try:
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
        deadline = time.monotonic() + seconds
        while True:
            try:
                await self.request("GET", "/health")
                return
            except errors.Unavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.5)

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
        body = await self.request("GET", f"/ml_data_api/use_cases/{name}")
        return UseCase.model_validate(body["use_case"])

    async def insert_rows(
        self, use_case: str, table: Table, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Insert rows; returns {"inserted": n, "skipped": m}."""
        path = f"/ml_data_api/use_cases/{use_case}/{table.value}/rows"
        result: dict[str, int] = await self.request("POST", path, json={"rows": rows})
        return result

    async def read_rows(self, use_case: str, table: Table, **params: Any) -> list[dict[str, Any]]:
        """Rows in time order (`last=N`, or `start`/`end`, and `limit`)."""
        path = f"/ml_data_api/use_cases/{use_case}/{table.value}/rows"
        rows: list[dict[str, Any]] = (await self.request("GET", path, params=params))["rows"]
        return rows

    async def attach_labels(self, use_case: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
        """Attach true labels ({"message_id", "value"}) to production rows."""
        path = f"/ml_data_api/use_cases/{use_case}/labels"
        result: dict[str, Any] = await self.request("POST", path, json={"labels": labels})
        return result

    async def use_cases(self) -> list[UseCase]:
        """Every registered use case."""
        body = await self.request("GET", "/ml_data_api/use_cases")
        return [UseCase.model_validate(record["use_case"]) for record in body]

    async def counts(self, use_case: str) -> dict[str, int]:
        """Rows per table of a use case."""
        path = f"/ml_data_api/use_cases/{use_case}/counts"
        result: dict[str, int] = await self.request("GET", path)
        return result


class QueueManagerClient(ApiClient):
    """Client of queue_manager."""

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
    ) -> dict[str, Any]:
        """Upload a model file as the next version of `name`."""
        form = {
            "name": name,
            "use_case": use_case.name,
            "task": use_case.task.value,
            "features": json.dumps(use_case.feature_names),
            "description": description,
            "uploaded_by": uploaded_by,
        }
        if use_case.target is not None:
            form["target"] = use_case.target.name
        if sha256 is not None:
            form["sha256"] = sha256
        files = {"file": (f"{name}.pkl", content, "application/octet-stream")}
        result: dict[str, Any] = await self.request(
            "POST", "/queue_manager/algorithms", data=form, files=files
        )
        return result

    async def download_algorithm(self, name: str, version: int) -> tuple[bytes, str]:
        """A model file's bytes and the SHA-256 queue_manager recorded for it."""
        path = f"/queue_manager/algorithms/{name}/versions/{version}/file"
        response = await self.send("GET", path)
        return response.content, response.headers.get("X-Checksum-SHA256", "")

    async def verified_model(self, name: str, version: int) -> tuple[dict[str, Any], bytes]:
        """An algorithm version's record and file; `ChecksumMismatch` unless the bytes
        match the SHA-256 recorded at upload (and the one sent with them)."""
        record = await self.request("GET", f"/queue_manager/algorithms/{name}/versions/{version}")
        content, sent = await self.download_algorithm(name, version)
        actual = hashlib.sha256(content).hexdigest()
        if actual != record["sha256"] or (sent and actual != sent):
            raise errors.ChecksumMismatch(
                f"model file {name}:{version} does not match its checksum "
                f"(expected {record['sha256'][:12]}..., got {actual[:12]}...)"
            )
        return record, content

    async def bind_service(
        self,
        name: str,
        *,
        routing_key: str,
        algorithm_name: str,
        algorithm_version: int | str = "latest",
        use_case: str | None = None,
        updated_by: str = "api",
    ) -> dict[str, Any]:
        """Create a service or rebind it to another algorithm version."""
        body = {
            "routing_key": routing_key,
            "algorithm_name": algorithm_name,
            "algorithm_version": algorithm_version,
            "use_case": use_case,
            "updated_by": updated_by,
        }
        result: dict[str, Any] = await self.request(
            "PUT", f"/queue_manager/services/{name}", json=body
        )
        return result

    async def services(self) -> list[dict[str, Any]]:
        """Every service and the algorithm version it resolves to."""
        result: list[dict[str, Any]] = await self.request("GET", "/queue_manager/services")
        return result

    async def service(self, name: str) -> dict[str, Any]:
        """A service and the algorithm version it resolves to."""
        result: dict[str, Any] = await self.request("GET", f"/queue_manager/services/{name}")
        return result

    async def create_jobs(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create the jobs that do not exist yet; returns every job as stored."""
        body = await self.request("POST", "/queue_manager/jobs/batch", json={"jobs": jobs})
        result: list[dict[str, Any]] = body["jobs"]
        return result

    async def update_jobs(self, updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Move jobs to a new status with their result or reason."""
        body = await self.request("PATCH", "/queue_manager/jobs/batch", json={"jobs": updates})
        result: list[dict[str, Any]] = body["jobs"]
        return result

    async def job_counts(self, service: str | None = None) -> dict[str, int]:
        """Jobs per status."""
        params = {"service": service} if service else {}
        result: dict[str, int] = await self.request(
            "GET", "/queue_manager/jobs/counts", params=params
        )
        return result
