"""Evidently reports of a window of production data, as monitoring_api builds them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

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
    """Evidently's self-contained HTML page of the report (monitoring_api caches it, so
    asking twice builds it once). Waits settings.GITS_API_SLOW_TIMEOUT: a report of many
    rows takes a while to build."""
    path = f"/monitoring_api/use_cases/{query.use_case}/reports/{query.kind}"
    params = query.params()
    timeout = settings.GITS_API_SLOW_TIMEOUT
    return client("monitoring_api").send("GET", path, params=params, timeout=timeout).content


def title(query: ReportQuery) -> str:
    """The report's title in words: "Data drift of product_quality"."""
    return f"{REPORT_KINDS.get(query.kind, query.kind)} of {query.use_case}"


def window_in_words(query: ReportQuery) -> str:
    """Which production rows the report looks at and what it compares them with, in
    words (times in UTC)."""
    against = f"compared with the {query.reference} table"
    if query.start is None and query.end is None:
        return f"the newest {query.last or DEFAULT_LAST_ROWS:,} production rows, {against}"
    if query.end is None:
        return f"production rows since {_when(query.start)}, {against}"
    if query.start is None:
        return f"production rows before {_when(query.end)}, {against}"
    return f"production rows from {_when(query.start)} to {_when(query.end)}, {against}"


def file_name(query: ReportQuery) -> str:
    """A download's file name: use case, report kind and the window."""
    window = (
        f"newest-{query.last or DEFAULT_LAST_ROWS}"
        if query.start is None and query.end is None
        else "-".join(
            t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") for t in (query.start, query.end) if t
        )
    )
    return f"{query.use_case}-{query.kind}-{window}.html"


def _when(moment: datetime | None) -> str:
    assert moment is not None
    return moment.astimezone(UTC).strftime("%d %b %Y %H:%M:%S UTC")
