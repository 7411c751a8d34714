"""Production and reference rows, read only through ml_data_api, as DataFrames."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.schemas import Table, UseCase
from monitoring_api.frames import Window, to_frame

DEFAULT_LAST = 1000


@dataclass(frozen=True)
class WindowQuery:
    """Which production rows: the newest `last`, or those in [start, end)."""

    last: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.last is not None and (self.start is not None or self.end is not None):
            raise errors.InvalidInput("give either last=N or a start/end time range, not both")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise errors.InvalidInput(f"empty time window: start {self.start} is not before end")

    def params(self, max_rows: int) -> dict[str, Any]:
        """The ml_data_api query parameters of this window."""
        if self.start is None and self.end is None:
            last = min(self.last or DEFAULT_LAST, max_rows)
            return {"last": last, "limit": last}
        params: dict[str, Any] = {"limit": max_rows}
        if self.start is not None:
            params["start"] = self.start.isoformat()
        if self.end is not None:
            params["end"] = self.end.isoformat()
        return params

    def describe(self) -> dict[str, Any]:
        """The window as the user asked for it, for the report's JSON."""
        if self.start is None and self.end is None:
            return {"last": self.last or DEFAULT_LAST}
        return {"start": _iso(self.start), "end": _iso(self.end)}


class Sources:
    """ml_data_api's rows of a use case, as typed frames built off the event loop."""

    def __init__(self, ml_data: MlDataClient, *, max_rows: int, reference_rows: int) -> None:
        self.ml_data = ml_data
        self.max_rows = max_rows
        self.reference_rows = reference_rows

    async def use_case(self, name: str) -> UseCase:
        """The use case's definition (`NotFound` when ml_data_api does not know it)."""
        return await self.ml_data.use_case(name)

    async def production(self, use_case: UseCase, query: WindowQuery) -> Window:
        """The production rows of the window, oldest first."""
        params = query.params(self.max_rows)
        return await self._read(use_case, Table.production, params)

    async def reference(self, use_case: UseCase, table: Table) -> Window:
        """The newest reference rows of the training or testing table."""
        params = {"last": self.reference_rows, "limit": self.reference_rows}
        return await self._read(use_case, table, params)

    async def _read(self, use_case: UseCase, table: Table, params: dict[str, Any]) -> Window:
        rows = await self.ml_data.read_rows(use_case.name, table, **params)
        frame = await asyncio.to_thread(to_frame, use_case, rows)
        time_column = use_case.time_column
        return Window(
            table=table.value,
            frame=frame,
            start=rows[0][time_column] if rows else None,
            end=rows[-1][time_column] if rows else None,
            truncated=len(rows) >= params["limit"] and "last" not in params,
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
