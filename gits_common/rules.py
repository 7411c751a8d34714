"""The rules a single value must meet to cross a GITS boundary, each named after the
store whose limit it enforces: PostgreSQL (text, bigint, double precision, timestamptz
with a unique index on message_id) and pandas (the time range every report and
retraining reads through). Imported by gits_common.schemas (wire shapes) and
gits_common.values (records and JSON documents); imports nothing of GITS."""

from __future__ import annotations

import re
import reprlib
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AllowInfNan, BeforeValidator, Strict

# pandas keeps times as nanoseconds since 1970 in 64 bits, so it holds 1677-09-21 to
# 2262-04-11 (pandas docs, "Timestamp limitations"). Monitoring and retraining read every
# stored time through pandas: a time outside these whole years is refused at the boundary.
EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)

# PostgreSQL's bigint and BSON's int64 are signed 64-bit integers.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# message_id has unique btree indexes, whose entries PostgreSQL caps at 2,704 bytes
# ("index row size exceeds btree maximum"): alone in ml_data_api's production tables, and
# after the service name (at most 200 characters, 800 UTF-8 bytes) in queue_manager's job
# key. 512 characters, and at most 1,536 UTF-8 bytes, fit both. Batch readings get ids
# "<message id>-<i>", so this is well above SensorMessage's 200.
MESSAGE_ID_MAX_CHARS = 512
MESSAGE_ID_MAX_BYTES = 1536

# NUL and the surrogate code points U+D800-U+DFFF. A Python str decoded from JSON holds a
# surrogate only when it was unpaired ("\ud800" alone): a valid pair becomes one code point.
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
# An ISO 8601 time starts with its date, YYYY-MM-DD.
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
# The fraction of seconds in an ISO 8601 time: digits after the first 6 must be zeros.
_FRACTION = re.compile(r"[Tt ]\d\d:\d\d:\d\d[.,](\d+)")


def as_utc(value: datetime) -> datetime:
    """A timestamp in UTC; one without a zone is taken as UTC. Raises ValueError (which
    pydantic reports as a 422 naming the field) outside [EARLIEST, LATEST)."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, or 9999 with a negative one
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(
            f"time {value.isoformat()} is outside the range GITS keeps "
            f"({EARLIEST.date()} to {LATEST.date()}, UTC)"
        )
    return utc


def storable_text(value: str) -> str:
    """The text unchanged, or ValueError naming the first character that cannot be
    stored: NUL (PostgreSQL's text cannot hold it: "invalid byte sequence for encoding
    UTF8: 0x00") or an unpaired surrogate U+D800-U+DFFF (UTF-8 cannot encode it, so
    neither PostgreSQL, MongoDB nor a JSON response can carry it)."""
    found = unstorable(value)
    if found:
        raise ValueError(f"text holds {found}, which cannot be stored")
    return value


def unstorable(text: str) -> str | None:
    """What in the text no store can hold, in words ('the NUL character at position 3'),
    or None."""
    found = UNSTORABLE_CHARACTERS.search(text)
    if found is None:
        return None
    char = found.group()
    what = "the NUL character" if char == "\x00" else f"an unpaired surrogate U+{ord(char):04X}"
    return f"{what} at position {found.start()}"


def bigint(value: int) -> int:
    """The integer unchanged, or ValueError outside PostgreSQL's bigint (and BSON's
    int64): -2**63 to 2**63 - 1."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("integer out of the range GITS keeps, -2**63 to 2**63-1 (64 bits)")
    return value


def exact_float(value: Any) -> Any:
    """For a float column: an integer is taken only when a double holds it exactly
    (every integer up to 2**53 in size, and some beyond), so that what is read back
    equals what was sent; booleans and everything else pass on to the float check.
    Raises ValueError for an integer PostgreSQL's double precision would round."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            exact = float(value) == value
        except OverflowError:  # over 1.8e308: no double at all
            exact = False
        if not exact:
            raise ValueError(
                f"integer {short(value)} cannot be held exactly by a double precision "
                "float column; send it as a float if rounding is intended"
            )
    return value


def iso_time(value: Any) -> Any:
    """For a time column: an ISO 8601 string (or a datetime from Python code), no finer
    than a microsecond, which is what PostgreSQL's timestamptz keeps. Numbers, and texts
    of numbers ("1.5"), are refused: pydantic would read them as seconds or milliseconds
    since 1970 depending on their size. Raises ValueError; the range is checked
    afterwards by `as_utc`."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("a time must be an ISO 8601 string such as 2025-01-01T12:00:00Z")
    found = _FRACTION.search(value)
    if found is not None and found.group(1)[6:].strip("0"):
        raise ValueError(
            f"time {short(value)} is finer than a microsecond, which is all PostgreSQL keeps"
        )
    return value


# Every time that crosses a boundary (a row, a job, a query parameter): an ISO 8601
# string (never a number, whose unit pydantic would guess), in range, in UTC.
UtcTime = Annotated[datetime, BeforeValidator(iso_time), AfterValidator(as_utc)]

# The column types. Each keeps a value exactly or refuses it: text without NUL or lone
# surrogates, int in bigint, float finite (and an int only when a double holds it), time
# an ISO 8601 string in pandas' range and no finer than PostgreSQL's microsecond.
Text = Annotated[str, Strict(), AfterValidator(storable_text)]
BigInt = Annotated[int, Strict(), AfterValidator(bigint)]
Float = Annotated[float, Strict(), AllowInfNan(False), BeforeValidator(exact_float)]
# A boolean where a number or a boolean is meant is refused (lax pydantic reads true as 1
# and "yes" as true): for every number and flag of a request body.
Flag = Annotated[bool, Strict()]
RowTime = UtcTime


def message_id(value: str) -> str:
    """The id unchanged, or ValueError when empty, over MESSAGE_ID_MAX_CHARS or over
    MESSAGE_ID_MAX_BYTES in UTF-8 (the unique indexes on message_id cannot hold longer
    keys; an empty id would make every later row with one a duplicate)."""
    if not 1 <= len(value) <= MESSAGE_ID_MAX_CHARS:
        raise ValueError(
            f"message_id must have 1 to {MESSAGE_ID_MAX_CHARS} characters, got {len(value)}"
        )
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MESSAGE_ID_MAX_BYTES:
        raise ValueError(
            f"message_id must take at most {MESSAGE_ID_MAX_BYTES} bytes in UTF-8, got {size}"
        )
    return value


def printable(text: str) -> str:
    """Text safe to put in a UTF-8 answer: NUL and unpaired surrogates written as
    escapes (\\x00, \\ud800), everything else unchanged."""
    return UNSTORABLE_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


# Bounded in depth and length: an input may be a deeply nested list or a 60 MB string.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 2, 60, 60, 40


def short(value: Any) -> str:
    """A value's repr, bounded in depth and length, for error messages."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an int of over 4,300 digits has no decimal form in Python
        return "<a very long integer>"


# A message's id keys its production row and its job: text a store holds, 1 to
# MESSAGE_ID_MAX_CHARS characters.
MessageId = Annotated[str, Strict(), AfterValidator(storable_text), AfterValidator(message_id)]
# Free text kept as given (a description): anything but what no store can hold.
StorableText = Annotated[str, AfterValidator(storable_text)]
