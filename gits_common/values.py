"""Validation of records against typed columns, shared by every service that accepts
rows (ml_data_api) or messages (workers), so both judge a value the same way."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import AfterValidator, AllowInfNan, ConfigDict, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from gits_common.schemas import ColumnType

Kind = ColumnType | Literal["time"]
Records = TypeAdapter[list[dict[str, Any]]]


def as_utc(value: datetime) -> datetime:
    """A timestamp in UTC; one without a zone is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Numbers, booleans and texts are strict: "1.5" is not a float, true is not a number.
VALUE_TYPES: dict[Kind, Any] = {
    ColumnType.float: Annotated[float, Strict(), AllowInfNan(False)],
    ColumnType.int: Annotated[int, Strict()],
    ColumnType.bool: Annotated[bool, Strict()],
    ColumnType.text: Annotated[str, Strict()],
    "time": Annotated[datetime, AfterValidator(as_utc)],
}


def records_validator(
    name: str, columns: Iterable[tuple[str, Kind, bool]], *, extra: bool = False
) -> Records:
    """A validator for lists of records with these (name, kind, required) columns.
    Unknown keys are refused unless `extra` is true, in which case they are dropped."""
    keys = {
        column: Required[VALUE_TYPES[kind]] if required else NotRequired[VALUE_TYPES[kind] | None]
        for column, kind, required in columns
    }
    record = TypedDict(name, keys, total=False)  # type: ignore[misc]
    record.__pydantic_config__ = ConfigDict(extra="ignore" if extra else "forbid")  # type: ignore[attr-defined]
    return TypeAdapter(list[record])  # type: ignore[arg-type]


def problems(exc: ValidationError) -> list[dict[str, Any]]:
    """Each validation error as {row, column, reason}, in words a user can act on."""
    return [_describe(error) for error in exc.errors()]


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
