"""HTTP clients for the GITS APIs. Error answers come back as the same domain errors
the API raised (NotFound, InvalidInput, ...), so callers handle one set of exceptions."""

from __future__ import annotations

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


class ApiClient:
    """A bearer-authenticated JSON client for one GITS API."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 30.0, name: str = "GITS API"
    ) -> None:
        self.name = name
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer, or the domain error the API reported."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.Unavailable(
                f"{self.name} unreachable at {self._http.base_url}: {exc}"
            ) from exc
        if response.is_success:
            return response.json()
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        kind = ERRORS_BY_STATUS.get(response.status_code, errors.GitsError)
        raise kind(f"{self.name} answered {response.status_code}: {detail}")

    def wait_until_up(self, seconds: float) -> None:
        """Poll /health until it answers 200, or raise `Unavailable` after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.request("GET", "/health")
                return
            except errors.Unavailable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        """Close the underlying connections."""
        self._http.close()


class MlDataClient(ApiClient):
    """Client of ml_data_api."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        super().__init__(base_url, token, timeout=timeout, name="ml_data_api")

    def register_use_case(self, use_case: UseCase) -> dict[str, Any]:
        """Register a use case (a no-op when the same definition is there)."""
        result: dict[str, Any] = self.request(
            "POST", "/ml_data_api/use_cases", json=use_case.model_dump(mode="json")
        )
        return result

    def insert_rows(
        self, use_case: str, table: Table, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Insert rows; returns {"inserted": n, "skipped": m}."""
        result: dict[str, int] = self.request(
            "POST", f"/ml_data_api/use_cases/{use_case}/{table.value}/rows", json={"rows": rows}
        )
        return result

    def read_rows(self, use_case: str, table: Table, **params: Any) -> list[dict[str, Any]]:
        """Rows in time order (`last=N`, or `start`/`end`, and `limit`)."""
        body = self.request(
            "GET", f"/ml_data_api/use_cases/{use_case}/{table.value}/rows", params=params
        )
        rows: list[dict[str, Any]] = body["rows"]
        return rows

    def counts(self, use_case: str) -> dict[str, int]:
        """Rows per table of a use case."""
        result: dict[str, int] = self.request("GET", f"/ml_data_api/use_cases/{use_case}/counts")
        return result
