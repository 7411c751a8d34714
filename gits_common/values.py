"""Validation of records and JSON documents that cross a GITS boundary, shared by every
service that accepts rows (ml_data_api), messages (workers) or JSON documents
(queue_manager), so all of them judge a value the same way: a value is refused with a
reason, or stored exactly as sent. The rules for single values are in
gits_common.rules; the JSON rules here name MongoDB/BSON's limits."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Annotated, Any, Literal, NotRequired, Required

import orjson
from pydantic import (
    AfterValidator,
    ConfigDict,
    Strict,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from gits_common.rules import (
    INT64_MAX,
    INT64_MIN,
    UNSTORABLE_CHARACTERS,
    BigInt,
    Float,
    MessageId,
    RowTime,
    Text,
    printable,
    short,
    unstorable,
)
from gits_common.schemas import ColumnType

Kind = ColumnType | Literal["time", "message_id"]
Records = TypeAdapter[list[dict[str, Any]]]


# Numbers, booleans and texts are strict: "1.5" is not a float, true is not a number.
VALUE_TYPES: dict[Kind, Any] = {
    ColumnType.float: Float,
    ColumnType.int: BigInt,
    ColumnType.bool: Annotated[bool, Strict()],
    ColumnType.text: Text,
    "time": RowTime,
    "message_id": MessageId,
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
    """Each validation error as {row, column, reason}, in words a user can act on.
    Column names are given as `printable` text, so the answer can always be encoded."""
    return [_describe(error) for error in exc.errors()]


def _describe(error: Any) -> dict[str, Any]:
    loc = error["loc"]
    index, column = (loc[0], loc[1]) if len(loc) > 1 else (loc[0] if loc else None, None)
    if error["type"] == "string_unicode" and column is None:  # a key no store can hold
        column = error["input"]
        reason = f"row {index}: column name {column!r} holds an unpaired surrogate"
    elif error["type"] == "extra_forbidden":
        reason = f"row {index}: unknown column {column!r}"
    elif error["type"] == "missing":
        reason = f"row {index}: missing column {column!r}"
    elif column is None:
        reason = f"row {index}: {error['msg']}"
    else:
        reason = f"row {index}, column {column!r}: {error['msg']} (got {short(error['input'])})"
    # repr() already escapes NUL and surrogates in the reason; the bare name needs it too.
    shown = printable(column) if isinstance(column, str) else column
    return {"row": index, "column": shown, "reason": reason}


# --- JSON documents (stored in MongoDB, read back as JSON) ---------------------------

# BSON, not JSON, is what MongoDB caps (16 MiB a document), and BSON can take about 6.5
# times the bytes of compact JSON (an array of small integers: "0," is 2 bytes, its BSON
# element 13). 1 MiB of JSON therefore fits in a job document with room to spare.
JSON_DOCUMENT_MAX_BYTES = 1024 * 1024
JSON_MAX_DEPTH = 50


def json_value(value: Any, *, max_bytes: int = JSON_DOCUMENT_MAX_BYTES) -> Any:
    """Any JSON value that MongoDB stores and gives back unchanged, or ValueError naming
    the path of the first offending part (`features.x`, `records.3`):

    - only dict (str keys), list, str, int, float, bool and None;
    - floats finite (JSON has no NaN or Infinity);
    - ints within signed 64 bits (BSON's int64; pymongo refuses larger ones);
    - strings and keys without NUL or unpaired surrogates (BSON keys are NUL-terminated,
      BSON strings must be UTF-8);
    - keys not starting with '$' and without '.' (MongoDB operators and paths;
      mongoengine's DictField refuses them);
    - at most JSON_MAX_DEPTH nested arrays and objects;
    - at most `max_bytes` as compact UTF-8 JSON (orjson's: floats in their shortest form,
      `1e-7` where json.dumps writes `1e-07`).
    """
    if not _fine(value, 1):
        _check(value, "", 1)  # the same rules again, naming where the first one broke
        raise ValueError("the document is not a JSON value MongoDB keeps")  # not reached
    # orjson, not json.dumps: every text, number and depth was checked above, and
    # json.dumps was a fifth of queue_manager's CPU when recording jobs (py-spy, #12).
    try:
        size = len(orjson.dumps(value))
    except TypeError:  # a subclass orjson does not write (numpy.float64, a StrEnum key)
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        raise ValueError(f"document of {size} bytes of JSON is over the limit of {max_bytes}")
    return value


def json_document_validator(max_bytes: int = JSON_DOCUMENT_MAX_BYTES) -> AfterValidator:
    """A pydantic validator for JSON values of at most `max_bytes` (see `json_value`):
    `Annotated[dict[str, Any], json_document_validator(64 * 1024)]`."""

    def check(value: Any) -> Any:
        return json_value(value, max_bytes=max_bytes)

    return AfterValidator(check)


JsonValue = Annotated[Any, json_document_validator()]
JsonDocument = Annotated[dict[str, Any], json_document_validator()]


def _fine(value: Any, depth: int) -> bool:
    """Whether the value keeps every rule of `json_value` (but its size): `_check`'s
    rules, without the paths and messages it builds for an error."""
    if value is None or isinstance(value, bool | float | str):
        if isinstance(value, float):
            return math.isfinite(value)
        return not isinstance(value, str) or UNSTORABLE_CHARACTERS.search(value) is None
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    if isinstance(value, list):
        return depth <= JSON_MAX_DEPTH and all(_fine(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return depth <= JSON_MAX_DEPTH and all(
            isinstance(key, str)
            and UNSTORABLE_CHARACTERS.search(key) is None
            and not key.startswith("$")
            and "." not in key
            and _fine(item, depth + 1)
            for key, item in value.items()
        )
    return False


def _check(value: Any, path: str, depth: int) -> None:
    where = path or "the document"
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{where}: integer out of the signed 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a JSON number")
    elif isinstance(value, str):
        _check_text(value, where, "text")
    elif isinstance(value, dict | list):
        if depth > JSON_MAX_DEPTH:
            raise ValueError(f"{where}: nested deeper than {JSON_MAX_DEPTH} levels")
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, f"{path}.{i}" if path else str(i), depth + 1)
        else:
            for key, item in value.items():
                key_path = f"{path}.{_key(key, where)}" if path else _key(key, where)
                _check(item, key_path, depth + 1)
    else:
        raise ValueError(f"{where}: {type(value).__name__} is not a JSON value")


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"{where}: key {short(key)} is not a string")
    _check_text(key, where, f"key {short(key)}")  # repr escapes NUL and surrogates
    if key.startswith("$") or "." in key:
        raise ValueError(
            f"{where}: key {short(key)} starts with '$' or holds '.', which MongoDB "
            "keeps for operators and paths"
        )
    return key


def _check_text(text: str, where: str, what: str) -> None:
    found = unstorable(text)
    if found:
        raise ValueError(f"{where}: {what} holds {found}, which cannot be stored")
