"""A use case's rows from a user's CSV file: the one reader that `gits load`, `gits
publish`, data_source `--csv` and ml_data_loader share, and the use case `gits use-case
create --from-csv` infers from one.

- Columns are found by the use case's names, or by the names the file used when the
  use case was created with `--normalize-names` (`UseCase.source_names`).
- Values are typed by the use case's definition; a value that does not parse is an
  `InvalidInput` naming the column and the file's line, never a crash further on.
- `message_id` is the file's column when it has one, else `<file stem>-<line>`: the same
  file loaded or published twice gives the same ids, which GITS stores once.
- The time column, when the file has none, is the moment of reading (training and
  testing rows), and left out for messages (a worker stamps them).
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from gits_common import errors
from gits_common.schemas import (
    COLUMN_NAME_PATTERN,
    COLUMN_NAME_RULE,
    RESERVED_COLUMNS,
    USE_CASE_NAME_PATTERN,
    USE_CASE_NAME_RULE,
    Column,
    ColumnType,
    Task,
    UseCase,
)

MESSAGE_ID = "message_id"
# Header line is line 1, so the first row is line 2 (what an editor shows).
FIRST_LINE = 2
INT64_LIMIT = 2.0**63


def generated_id(path: Path, line: int) -> str:
    """The id of a row of a file without a `message_id` column: `<stem>-<line>`, the
    line as an editor numbers it (the header is line 1)."""
    return f"{path.stem}-{line}"


def read_rows(use_case: UseCase, path: Path, *, with_target: bool, time_now: bool) -> pd.DataFrame:
    """The file's rows as the use case's columns (features, the target if `with_target`,
    the time column, `message_id`), renamed from `source_names` and typed.

    `time_now`: a file without the time column gets the moment of reading; without it,
    the column is left out. Raises `InvalidInput` for a missing column or a value that
    does not parse, naming both; `NotFound` for a missing file."""
    frame = _read(path)
    renamed = frame.rename(columns={v: k for k, v in use_case.source_names.items()})
    columns = [*use_case.features, *([use_case.target] if with_target and use_case.target else [])]
    missing = [c.name for c in columns if c.name not in renamed.columns]
    if missing:
        raise errors.InvalidInput(
            f"{path} has no column {', '.join(_shown(use_case, missing))} "
            f"(it has {', '.join(map(str, frame.columns))})"
        )
    out = pd.DataFrame(index=renamed.index)
    for column in columns:
        out[column.name] = _typed(renamed[column.name], column, path)
    time = use_case.time_column
    if time in renamed.columns:
        parsed = pd.to_datetime(renamed[time], utc=True, errors="coerce", format="mixed")
        _refuse_unparsed(renamed[time], parsed, time, path)
        out[time] = parsed
    elif time_now:
        out[time] = pd.Timestamp(datetime.now(UTC))
    if MESSAGE_ID in renamed.columns:
        ids = renamed[MESSAGE_ID].astype("string")
        _refuse_unparsed(renamed[MESSAGE_ID], ids.where(ids.str.strip() != ""), MESSAGE_ID, path)
        out[MESSAGE_ID] = ids.astype(str)
    else:
        out[MESSAGE_ID] = [generated_id(path, FIRST_LINE + i) for i in range(len(out))]
    duplicated = out[MESSAGE_ID][out[MESSAGE_ID].duplicated()]
    if not duplicated.empty:
        raise errors.InvalidInput(
            f"{path}: message_id {duplicated.iloc[0]!r} is on more than one row "
            f"(line {FIRST_LINE + int(duplicated.index[0])})"
        )
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class Inferred:
    """A use case inferred from a file, and the names it had to change there."""

    use_case: UseCase
    renamed: dict[str, str]  # {name in the file: column name}


def infer_use_case(
    name: str,
    path: Path,
    *,
    target: str,
    task: str | None = None,
    time_column: str | None = None,
    normalize_names: bool = False,
    description: str = "",
) -> Inferred:
    """A use case definition from a CSV's header and values: int, float, bool or text
    per column (pandas' inference; whole-number floats stay float), the task from the
    target when not given (text or bool, or int with at most 20 distinct values:
    classification; else regression). `message_id` and the time column are not features.

    Names that break the column naming rule raise `InvalidInput` with the rule, unless
    `normalize_names` maps them (`normalized_name`) and keeps the mapping in
    `source_names`. Raises `InvalidInput` for a missing target or time column."""
    if re.fullmatch(USE_CASE_NAME_PATTERN, name) is None:
        raise errors.InvalidInput(f"use case name {name!r} breaks the rule: {USE_CASE_NAME_RULE}")
    frame = _read(path)
    if frame.empty:
        raise errors.InvalidInput(f"{path} has no rows: a use case is inferred from its values")
    headers = [str(c) for c in frame.columns]
    for wanted, what in ((target, "target"), (time_column, "time column")):
        if wanted is not None and wanted not in headers:
            raise errors.InvalidInput(f"{path} has no {what} column {wanted!r}")
    renamed = {
        h: normalized_name(h)
        for h in headers
        if h != MESSAGE_ID and (not _valid(h) or h.lower() in RESERVED_COLUMNS)
    }
    if renamed and not normalize_names:
        shown = ", ".join(repr(h) for h in renamed)
        raise errors.InvalidInput(
            f"column names must be {COLUMN_NAME_RULE}, and not one GITS reserves "
            f"({', '.join(sorted(RESERVED_COLUMNS))}): {shown} are not. "
            "Rename them in the file, or pass --normalize-names to map them "
            f"({', '.join(f'{h!r} -> {n}' for h, n in renamed.items())})"
        )
    columns = {h: renamed.get(h, h) for h in headers}
    skip = {MESSAGE_ID, target, *([time_column] if time_column else [])}
    features = [
        Column(name=columns[h], type=_column_type(frame[h])) for h in headers if h not in skip
    ]
    target_column = Column(name=columns[target], type=_column_type(frame[target]))
    chosen_task = task or _task(frame[target], target_column.type)
    if chosen_task == "regression" and target_column.type not in (ColumnType.float, ColumnType.int):
        raise errors.InvalidInput(
            f"a regression target is a number; {target!r} holds {target_column.type.value}"
        )
    try:
        use_case = UseCase(
            name=name,
            task=Task(chosen_task),
            features=features,
            target=target_column,
            time_column=columns[time_column] if time_column else "timestamp",
            description=description,
            source_names={n: h for h, n in renamed.items()},
        )
    except ValidationError as exc:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise errors.InvalidInput(f"{path} does not make a use case: {reasons}") from exc
    return Inferred(use_case=use_case, renamed=renamed)


def normalized_name(header: str) -> str:
    """A header made a column name: accents dropped, every run of other characters an
    '_', a leading digit or '_' prefixed with 'c_', 63 characters at most; a reserved
    name gets a '_col' suffix. 'Body mass (kg)' -> 'Body_mass_kg'."""
    ascii_ = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9]+", "_", ascii_).strip("_") or "column"
    if not name[0].isalpha():
        name = f"c_{name}"
    name = name[:63]
    if name.lower() in RESERVED_COLUMNS:
        name = f"{name[:59]}_col"
    return name


def _read(path: Path) -> pd.DataFrame:
    """The file as text cells; `InvalidInput` for what is not a comma-separated file with
    one header of distinct names (pandas would rename a second 'a' to 'a.1')."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            header = next(csv.reader(file), [])
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
        )
    except FileNotFoundError as exc:
        raise errors.NotFound(f"no file {path}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"{path} is not a CSV file: {exc}") from exc
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise errors.InvalidInput(f"{path} names column(s) {twice} twice in its header")
    if len(header) == 1 and ";" in header[0]:
        raise errors.InvalidInput(
            f"{path} reads as one column {header[0]!r}: GITS reads comma-separated files; "
            "is this one separated by ';'?"
        )
    return frame


def _valid(header: str) -> bool:
    return re.fullmatch(COLUMN_NAME_PATTERN, header) is not None


def _shown(use_case: UseCase, names: Iterable[str]) -> list[str]:
    """Names as the user's files have them."""
    return [repr(use_case.source_names.get(n, n)) for n in names]


def _typed(values: pd.Series, column: Column, path: Path) -> pd.Series:
    """Text values as the column's type; `InvalidInput` naming the first that fails."""
    if column.type is ColumnType.text:
        return values.astype("string")
    if column.type is ColumnType.bool:
        lowered = values.str.strip().str.lower()
        mapped = lowered.map({"true": True, "false": False, "1": True, "0": False})
        _refuse_unparsed(values, mapped, column.name, path)
        return mapped.astype("boolean")
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    _refuse_unparsed(values, numbers, column.name, path)
    infinite = numbers.abs() == math.inf
    if column.type is ColumnType.int:
        infinite |= numbers.abs() >= INT64_LIMIT
    if infinite.any():
        index = infinite[infinite].index[0]
        raise errors.InvalidInput(
            f"{path}, line {FIRST_LINE + int(index)}: {column.name} {values[index]!r} is out "
            f"of range for a {column.type.value} column"
        )
    if column.type is ColumnType.int:
        whole = numbers.dropna()
        fraction = whole[whole != whole.round()]
        if not fraction.empty:
            line = FIRST_LINE + int(fraction.index[0])
            raise errors.InvalidInput(
                f"{path}, line {line}: {column.name} is an int column; "
                f"{values[fraction.index[0]]!r} is not a whole number"
            )
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    return numbers.astype("float64")


def _refuse_unparsed(raw: pd.Series, parsed: pd.Series, name: str, path: Path) -> None:
    """InvalidInput for the first value present in `raw` that `parsed` lost."""
    bad = raw.notna() & parsed.isna()
    if bad.any():
        index = bad[bad].index[0]
        raise errors.InvalidInput(
            f"{path}, line {FIRST_LINE + int(index)}: {name} {raw[index]!r} is not a valid value"
        )


def _column_type(values: pd.Series) -> ColumnType:
    present = values.dropna().str.strip()
    if present.empty:
        return ColumnType.float
    if present.str.lower().isin(["true", "false"]).all():
        return ColumnType.bool
    numbers = pd.to_numeric(present, errors="coerce").astype("float64")
    if numbers.isna().any() or (numbers.abs() == math.inf).any():
        return ColumnType.text  # words, or 'nan' / 'inf': not values a float column takes
    if present.str.fullmatch(r"[+-]?\d{1,18}").all():  # within int64
        return ColumnType.int
    return ColumnType.float


def _task(target: pd.Series, kind: ColumnType) -> str:
    if kind in (ColumnType.text, ColumnType.bool):
        return "classification"
    if kind is ColumnType.int and target.dropna().nunique() <= 20:
        return "classification"
    return "regression"
