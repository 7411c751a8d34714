"""Value rules shared by every boundary: column values (PostgreSQL, pandas) and JSON
documents (MongoDB), each either kept exactly or refused with a reason naming where."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from gits_common.rules import INT64_MAX, INT64_MIN, printable, storable_text
from gits_common.schemas import ColumnType
from gits_common.values import (
    JSON_MAX_DEPTH,
    VALUE_TYPES,
    JsonDocument,
    JsonValue,
    json_document_validator,
    json_value,
    problems,
    records_validator,
)

SETTINGS = settings(max_examples=150, deadline=None, database=None)
ANY_CHAR = st.characters(exclude_categories=())  # NUL and lone surrogates included


def adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(VALUE_TYPES[kind])


# --- column values ----------------------------------------------------------------------


@SETTINGS
@given(st.text(ANY_CHAR))
def test_a_text_is_kept_exactly_unless_utf8_or_postgresql_cannot_hold_it(text):
    unstorable = "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    try:
        kept = adapter(ColumnType.text).validate_python(text)
    except ValidationError as exc:
        assert unstorable
        assert "cannot be stored" in str(exc)
    else:
        assert not unstorable
        assert kept == text
        assert kept.encode("utf-8").decode("utf-8") == text


@SETTINGS
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_an_int_is_kept_within_bigint_and_refused_beyond(number):
    try:
        kept = adapter(ColumnType.int).validate_python(number)
    except ValidationError as exc:
        assert not INT64_MIN <= number <= INT64_MAX
        assert "-2**63 to 2**63-1" in str(exc)
    else:
        assert kept == number and INT64_MIN <= kept <= INT64_MAX


@SETTINGS
@given(st.integers(min_value=-(2**1100), max_value=2**1100) | st.floats() | st.booleans())
def test_a_float_column_takes_finite_floats_and_only_integers_a_double_holds(value):
    try:
        kept = adapter(ColumnType.float).validate_python(value)
    except ValidationError:
        exact = isinstance(value, float) and math.isfinite(value)
        exact |= type(value) is int and abs(value) < 2**1024 and float(value) == value
        assert not exact
    else:
        assert type(kept) is float and kept == value and not isinstance(value, bool)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0001-01-01T00:00:00Z", "outside the range"),
        ("0001-01-01T00:00:00+05:00", "outside the range"),
        ("9999-12-31T23:59:59-05:00", "outside the range"),
        ("1677-12-31T23:59:59Z", "outside the range"),
        ("2262-01-01T00:00:00Z", "outside the range"),
        ("2025-01-01T00:00:00.0000001Z", "finer than a microsecond"),
        (1_700_000_000, "ISO 8601"),
        ("1700000000", "ISO 8601"),
        ("1.5", "ISO 8601"),
        (True, "ISO 8601"),
    ],
)
def test_a_time_outside_pandas_range_or_finer_than_postgresql_keeps_is_refused(value, reason):
    with pytest.raises(ValidationError, match=reason):
        adapter("time").validate_python(value)


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2025-01-01T00:00:00+16:00", datetime(2024, 12, 31, 8, tzinfo=UTC)),
        ("2025-01-01T00:00:00-23:59", datetime(2025, 1, 1, 23, 59, tzinfo=UTC)),
        ("2025-01-01", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01T12:00:00", datetime(2025, 1, 1, 12, tzinfo=UTC)),
        ("2025-01-01T00:00:00.123456000Z", datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("1678-01-01T00:00:00Z", datetime(1678, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_time_with_any_offset_or_none_is_kept_as_its_utc_instant(value, utc):
    assert adapter("time").validate_python(value) == utc


def test_a_message_id_is_one_to_512_storable_characters():
    kind = adapter("message_id")
    assert kind.validate_python("é" * 512) == "é" * 512
    for bad in ("", "é" * 513, "a\x00"):
        with pytest.raises(ValidationError):
            kind.validate_python(bad)


def test_problems_name_a_key_no_store_can_hold_in_encodable_text():
    validator = records_validator("row", [("a", ColumnType.text, True)])
    with pytest.raises(ValidationError) as caught:
        validator.validate_python([{"a": "x", "b\ud800": 1}])
    (problem,) = problems(caught.value)
    assert problem["column"] == "b\\ud800"
    json.dumps(problem, ensure_ascii=False).encode("utf-8")  # does not raise


def test_printable_escapes_only_what_utf8_cannot_carry():
    assert printable("a\x00b\ud800é") == "a\\x00b\\ud800é"
    assert storable_text("é😀") == "é😀"


# --- JSON documents ---------------------------------------------------------------------

keys = st.text(ANY_CHAR, max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(ANY_CHAR, max_size=8)
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def bad_part(value: Any, path: str = "") -> str | None:
    """The path of the first part MongoDB could not keep as JSON, or None: an
    independent statement of the rules, walked in the same order."""
    where = path or "the document"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else where
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, str):
        return None if _storable(value) else where
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        key = str(key)
        if isinstance(value, dict) and (not _storable(key) or key.startswith("$") or "." in key):
            return where
        found = bad_part(item, f"{path}.{key}" if path else key)
        if found:
            return found
    return None


def _storable(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@SETTINGS
@given(documents)
def test_a_json_value_is_kept_exactly_or_refused_naming_the_first_bad_part(value):
    expected = bad_part(value)
    try:
        kept = json_value(value)
    except ValueError as exc:
        assert expected is not None, f"refused {value!r}: {exc}"
        assert str(exc).startswith(f"{expected}:"), (str(exc), expected)
    else:
        assert expected is None
        text = json.dumps(kept, ensure_ascii=False, allow_nan=False).encode("utf-8")
        assert json.loads(text) == value


@SETTINGS
@given(documents)
def test_the_size_limit_counts_the_bytes_of_compact_json(value):
    if bad_part(value) is not None:
        return
    compact = orjson.dumps(value)  # compact UTF-8 JSON of the value
    assert json.loads(compact) == value
    size = len(compact)
    assert json_value(value, max_bytes=size) == value
    with pytest.raises(ValueError, match=f"document of {size} bytes of JSON is over"):
        json_value(value, max_bytes=size - 1)


@pytest.mark.parametrize(
    ("document", "where", "reason"),
    [
        ({"features": {"x": math.nan}}, "features.x", "not a JSON number"),
        ({"features": {"x": -math.inf}}, "features.x", "not a JSON number"),
        ({"records": [0, 2**63]}, "records.1", "signed 64-bit"),
        ({"records": [0, -(2**63) - 1]}, "records.1", "signed 64-bit"),
        ({"a": "x\x00"}, "a", "NUL character"),
        ({"a": ["\udc80"]}, "a.0", "unpaired surrogate U+DC80"),
        ({"a": {"b\x00": 1}}, "a", "key 'b\\x00' holds the NUL character"),
        ({"a": {"\ud800": 1}}, "a", "unpaired surrogate"),
        ({"$set": 1}, "the document", "starts with '$'"),
        ({"a": {"b.c": 1}}, "a", "holds '.'"),
        ({"a": {1: 2}}, "a", "is not a string"),
        ({"a": (1, 2)}, "a", "tuple is not a JSON value"),
        ({"a": datetime(2025, 1, 1)}, "a", "datetime is not a JSON value"),
    ],
)
def test_a_document_mongodb_cannot_keep_is_refused_naming_the_path(document, where, reason):
    with pytest.raises(ValueError, match=r"^\S") as caught:
        json_value(document)
    assert str(caught.value).startswith(f"{where}:"), str(caught.value)
    assert reason in str(caught.value)


def test_nesting_is_kept_to_fifty_levels():
    def nested(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value]
        return value

    assert json_value(nested(JSON_MAX_DEPTH)) == nested(JSON_MAX_DEPTH)
    with pytest.raises(ValueError, match="nested deeper than 50"):
        json_value(nested(JSON_MAX_DEPTH + 1))
    with pytest.raises(ValueError, match="nested deeper than 50"):
        json_value(nested(100_000))  # refused without recursing 100,000 deep


def test_the_size_limit_is_the_compact_utf8_json_form():
    document = {"a": "é" * 10}  # {"a":"éééééééééé"} is 8 + 20 bytes
    assert json_value(document, max_bytes=28) == document
    with pytest.raises(ValueError, match="document of 28 bytes of JSON is over the limit of 27"):
        json_value(document, max_bytes=27)


def test_the_pydantic_types_refuse_with_a_validation_error_naming_the_field():
    class Job(BaseModel):
        payload: JsonDocument
        result: JsonValue = None
        small: Annotated[dict[str, Any], json_document_validator(max_bytes=10)] = {}

    assert Job(payload={"x": [1, 2.5, "é", None]}, result=3).result == 3
    with pytest.raises(ValidationError) as caught:
        Job(payload={"features": {"x": math.nan}})
    assert caught.value.errors()[0]["loc"] == ("payload",)
    assert "features.x" in caught.value.errors()[0]["msg"]
    with pytest.raises(ValidationError, match="over the limit of 10"):
        Job(payload={}, small={"a": "0123456789"})
    with pytest.raises(ValidationError) as caught:
        Job(payload={}, result={"a": {"b": "\x00"}})
    assert caught.value.errors()[0]["loc"] == ("result",)
    assert "a.b: text holds the NUL character" in caught.value.errors()[0]["msg"]
