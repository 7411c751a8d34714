"""Validation of incoming rows against a use case, before anything is written."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gits_common.errors import InvalidInput
from gits_common.schemas import Table, UseCase
from gits_common.values import Records, problems, records_validator
from ml_data_api.tables import fields

MAX_REPORTED_ERRORS = 20


def row_validator(use_case: UseCase, table: Table) -> Records:
    """A validator for a batch of rows of one table of the use case."""
    columns = [(f.name, f.kind, f.required) for f in fields(use_case, table)]
    return records_validator(f"{use_case.name}_{table.value}_row", columns)


def validate_rows(validator: Records, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with typed values, or `InvalidInput` naming each bad row and column."""
    try:
        return validator.validate_python(rows)
    except ValidationError as exc:
        found = problems(exc)
        shown = "; ".join(p["reason"] for p in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise InvalidInput(
            f"{len(found)} invalid value(s), nothing was written: {shown}{more}",
            errors=found[:MAX_REPORTED_ERRORS],
        ) from None
