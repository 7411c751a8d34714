"""Validation of incoming rows against a use case, before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, NotRequired, Required

from pydantic import AfterValidator, AllowInfNan, ConfigDict, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from gits_common.errors import InvalidInput
from gits_common.schemas import ColumnType, Table, UseCase
from ml_data_api.tables import Kind, fields

MAX_REPORTED_ERRORS = 20


def _as_utc(value: datetime) -> datetime:
    """Timestamps without a zone are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# Numbers, booleans and texts are strict: "1.5" is not a float, true is not a number.
VALUE_TYPES: dict[Kind, Any] = {
    ColumnType.float: Annotated[float, Strict(), AllowInfNan(False)],
    ColumnType.int: Annotated[int, Strict()],
    ColumnType.bool: Annotated[bool, Strict()],
    ColumnType.text: Annotated[str, Strict()],
    "time": Annotated[datetime, AfterValidator(_as_utc)],
}


def row_validator(use_case: UseCase, table: Table) -> TypeAdapter[list[dict[str, Any]]]:
    """A validator for a batch of rows of one table of the use case."""
    keys = {
        f.name: Required[VALUE_TYPES[f.kind]]
        if f.required
        else NotRequired[VALUE_TYPES[f.kind] | None]
        for f in fields(use_case, table)
    }
    row = TypedDict(f"{use_case.name}_{table.value}_row", keys, total=False)  # type: ignore[misc]
    row.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return TypeAdapter(list[row])  # type: ignore[arg-type]


def validate_rows(
    validator: TypeAdapter[list[dict[str, Any]]], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows with typed values, or `InvalidInput` naming each bad row and column."""
    try:
        return validator.validate_python(rows)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        shown = "; ".join(p["reason"] for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InvalidInput(
            f"{len(problems)} invalid value(s), nothing was written: {shown}{more}",
            errors=problems[:MAX_REPORTED_ERRORS],
        ) from None


def _describe(error: Any) -> dict[str, Any]:
    loc = error["loc"]
    index, column = (loc[0], loc[1]) if len(loc) > 1 else (loc[0] if loc else None, None)
    if error["type"] == "extra_forbidden":
        reason = f"row {index}: unknown column {column!r}"
    elif error["type"] == "missing":
        reason = f"row {index}: missing column {column!r}"
    elif column is None:
        reason = f"row {index}: {error['msg']}"
    else:
        reason = f"row {index}, column {column!r}: {error['msg']} (got {_short(error['input'])})"
    return {"row": index, "column": column, "reason": reason}


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
