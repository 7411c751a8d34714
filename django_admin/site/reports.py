"""Evidently reports of a window of production data, as monitoring_api builds them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django_admin.apis import client
from gits_common.monitoring import Reference, ReportKind

# What the form calls monitoring_api's report kinds and references.
REPORT_KINDS = {kind.value: kind.value.replace("_", " ").capitalize() for kind in ReportKind}
REFERENCES = {reference.value: f"{reference.value.capitalize()} table" for reference in Reference}
DEFAULT_LAST_ROWS = 1000


@dataclass(frozen=True)
class ReportQuery:
    """A report of one kind over a window: the newest `last` rows, or `start`..`end`."""

    use_case: str
    kind: str
    reference: str = "training"
    last: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def params(self) -> dict[str, Any]:
        """monitoring_api's query parameters for the HTML page of this report."""
        params: dict[str, Any] = {"reference": self.reference, "format": "html"}
        if self.start is not None or self.end is not None:
            params |= {
                key: value.isoformat()
                for key, value in (("start", self.start), ("end", self.end))
                if value is not None
            }
        else:
            params["last"] = self.last or DEFAULT_LAST_ROWS
        return params


def report_html(query: ReportQuery) -> bytes:
    """Evidently's self-contained HTML page of the report."""
    path = f"/monitoring_api/use_cases/{query.use_case}/reports/{query.kind}"
    return client("monitoring_api").send("GET", path, params=query.params()).content
