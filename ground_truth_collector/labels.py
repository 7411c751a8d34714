"""True labels read from a CSV file of `message_id` and the target column: each checked
against the target's type, and sent to ml_data_api at once (`attach_csv_labels`, what
`gits labels NAME FILE` calls) or as they come due (`sources.CsvLabels`)."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.schemas import Column, ColumnType

log = logging.getLogger(__name__)
ID_COLUMN = "message_id"
BATCH_SIZE = 5000  # labels a request; well under ML_DATA_API_MAX_BATCH_ROWS
MAX_REPORTED = 20  # problems an InvalidInput lists, as ml_data_api's own answers
INT_RANGE = (-(2**63), 2**63 - 1)  # a bigint column
TRUE, FALSE = {"true", "t", "yes", "1"}, {"false", "f", "no", "0"}

Label = float | int | bool | str


def parse_label(value: Any, target: Column) -> Label:
    """`value` (CSV text, or what a database or JSON gave) as a label of the target's
    type: a finite number for a float target, a whole number in bigint's range for an
    int one, true/false (or 1/0) for a bool, non-empty text for a text one. Raises
    ValueError saying why, naming the column."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{target.name} is missing")
    parse = _PARSERS[target.type]
    try:
        return parse(value)
    except (ValueError, TypeError, ArithmeticError):
        raise ValueError(f"{target.name} {_shown(value)} is not {_WANTED[target.type]}") from None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError
    number = float(value.strip() if isinstance(value, str) else value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, str):
        value = value.strip()
        number = Decimal(value)  # "3" and "3.0" are whole, "3.5" and "nan" are not
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        number = Decimal(str(value))
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError
    whole = int(number)
    if not INT_RANGE[0] <= whole <= INT_RANGE[1]:
        raise ValueError
    return whole


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise ValueError


def _text(value: Any) -> str:
    if isinstance(value, bool | float):
        raise TypeError  # a float label would not round-trip as the class it names
    return str(value).strip()


_PARSERS: dict[ColumnType, Callable[[Any], Label]] = {
    ColumnType.float: _float,
    ColumnType.int: _int,
    ColumnType.bool: _bool,
    ColumnType.text: _text,
}
_WANTED = {
    ColumnType.float: "a finite number",
    ColumnType.int: "a whole number",
    ColumnType.bool: "true or false",
    ColumnType.text: "a class label (text or a whole number)",
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class ParsedLabels:
    """Labels by message id (a later row of an id wins) and, for each row refused, why
    (`"line 7: quality 'abc' is not a finite number"`)."""

    labels: dict[str, Label] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def parse_csv_labels(
    text: str, target: Column, *, source: str, column: str | None = None
) -> ParsedLabels:
    """The labels of a CSV document whose header names `message_id` and the target
    column, by `column` (its name in the user's files, `UseCase.source_names`) or its
    own; other columns are ignored. Raises `NotFound` naming the columns there are when
    either is missing; a row with no message id or an unusable label is refused, never
    raised."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    column = column or target.name
    missing = [name for name in (ID_COLUMN, column) if name not in header]
    if missing:
        raise errors.NotFound(
            f"{source} has no column {', '.join(map(repr, missing))} (its header: "
            f"{', '.join(header) or 'none'}); it needs {ID_COLUMN!r} and {column!r}"
        )
    parsed = ParsedLabels()
    for row in reader:
        message_id = (row.get(ID_COLUMN) or "").strip()
        try:
            if not message_id:
                raise ValueError(f"{ID_COLUMN} is missing")
            parsed.labels[message_id] = parse_label(row.get(column), target)
        except ValueError as exc:
            parsed.refused.append(f"line {reader.line_num}: {exc}")
    return parsed


@dataclass(frozen=True)
class AttachResult:
    """What one upload of labels did: production rows that got their label, and the
    message ids the CSV named that no production row has."""

    labelled: int
    unknown: int


async def attach_csv_labels(
    client: MlDataClient, use_case: str, path: Path, *, batch_size: int = BATCH_SIZE
) -> AttachResult:
    """Read a CSV of `message_id` and the use case's target column, check every label
    against the target's type, then attach them to the production rows they name, in
    batches of `batch_size` (ml_data_api copies those rows into the training table).

    Nothing is sent unless every row is usable. Raises `NotFound` for an unknown use
    case, a missing file or a missing column; `InvalidInput` for a use case without a
    target, or naming the first refused row (line of the file) and listing up to 20;
    `Unavailable` when ml_data_api is unreachable (batches sent before stay sent:
    sending them again changes nothing)."""
    definition = await client.use_case(use_case)
    target = definition.target
    if target is None:
        raise errors.InvalidInput(f"use case {use_case!r} has no target column to label")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark
    except FileNotFoundError:
        raise errors.NotFound(f"no label file {str(path)!r}") from None
    parsed = parse_csv_labels(
        text, target, source=str(path), column=definition.source_names.get(target.name)
    )
    if parsed.refused:
        raise errors.InvalidInput(
            f"{len(parsed.refused)} row(s) of {path} refused, no label was sent: "
            f"{parsed.refused[0]}",
            errors=[{"reason": reason} for reason in parsed.refused[:MAX_REPORTED]],
        )
    items = list(parsed.labels.items())
    labelled = 0
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = [{"message_id": mid, "value": label} for mid, label in chunk]
        labelled += int((await client.attach_labels(use_case, batch))["labelled"])
        log.info("sent %d of %d label(s) for %s", start + len(batch), len(items), use_case)
    # Ids are unique in a batch, so every id not found is one the production table lacks.
    return AttachResult(labelled=labelled, unknown=len(items) - labelled)
