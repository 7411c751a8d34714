"""Property: whatever JSON value a client puts in any column of any role, ml_data_api
either stores it and gives it back equal, or refuses it with a 422 naming the row and
the column, and stores nothing. Never a 5xx. And every value the stores can hold is
stored. Through the real HTTP API on the real PostgreSQL."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gits_common.rules import EARLIEST, LATEST, MESSAGE_ID_MAX_CHARS
from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_common.values import Kind
from tests.ml_data_api.conftest import unique

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TYPES = [ColumnType.float, ColumnType.int, ColumnType.bool, ColumnType.text]
# One use case per target type (the prediction has the target's type), named once per run.
USE_CASES = {
    target: UseCase(
        name=unique(f"values_{target.value}"),
        task=Task.regression if target is ColumnType.float else Task.classification,
        features=[Column(name=f"f_{t.value}", type=t) for t in TYPES],
        target=Column(name="y", type=target),
        time_column="ts",
    )
    for target in TYPES
}
GOOD: dict[Kind, Any] = {
    ColumnType.float: 1.5,
    ColumnType.int: 7,
    ColumnType.bool: True,
    ColumnType.text: "x",
    "time": "2025-01-01T00:00:00+00:00",
    "message_id": "m-1",
}


@dataclass(frozen=True)
class Slot:
    """A column in a role: which use case (by target type), table, column and kind."""

    target: ColumnType
    table: str
    column: str
    kind: Kind

    def __str__(self) -> str:
        return f"{self.table}.{self.column} ({self.kind}, target {self.target.value})"


SLOTS = [
    *(Slot(ColumnType.float, "training", f"f_{t.value}", t) for t in TYPES),  # features
    Slot(ColumnType.float, "training", "ts", "time"),
    Slot(ColumnType.float, "training", "message_id", "message_id"),
    *(Slot(t, "training", "y", t) for t in TYPES),  # target
    *(Slot(t, "production", "y", t) for t in TYPES),  # target, optional in production
    *(Slot(t, "production", "prediction", t) for t in TYPES),  # production extras
    Slot(ColumnType.float, "production", "prediction_score", ColumnType.float),
    Slot(ColumnType.text, "production", "model_version", ColumnType.text),
    Slot(ColumnType.int, "production", "message_id", "message_id"),
]
MISSING = object()  # the column left out of the row

# --- values ---------------------------------------------------------------------------

ANY_CHAR = st.characters(exclude_categories=())  # lone surrogates and NUL included
any_text = st.text(ANY_CHAR, max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
offsets = st.none() | st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@st.composite
def time_texts(draw: st.DrawFn, low: datetime = datetime(1, 1, 2), high=datetime(9999, 12, 30)):
    """ISO 8601 times as clients write them: any year, any offset (or none), T or space,
    seconds to microseconds, 'Z' for UTC, dates alone, nanosecond fractions."""
    moment = draw(st.datetimes(min_value=low, max_value=high)).replace(tzinfo=draw(offsets))
    form = draw(st.sampled_from(["auto", "seconds", "microseconds", "date", "nanos", "Z"]))
    if form == "date":
        return moment.date().isoformat()
    text = moment.isoformat(sep=draw(st.sampled_from("T ")), timespec="microseconds")
    if form == "nanos":
        return text[:26] + draw(st.sampled_from(["000", "001", "999"])) + text[26:]
    if form == "Z" and moment.utcoffset() == timedelta(0):
        return text.replace("+00:00", "Z")
    return moment.isoformat(timespec=form if form != "Z" else "auto")


# Explicit edge values: every column gets the common ones and those of its kind (the
# hypothesis properties below draw from all of them for every column).
COMMON_EDGES: list[Any] = [None, MISSING, True, 0, 1.5, "", "\x00", "\ud800", [], {}, "1.5"]
NUMBER_EDGES: list[Any] = [
    *(2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64, 2**53, 2**53 + 1, 10**400),
    *(1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf, -0.0, 0.0, False, [1.5], "NaN"),
]
TEXT_EDGES: list[Any] = [
    *("a\x00b", "\udfff", "a\ud83d", "\ud83d\ude00", "\\.", '"', "true", {"a": 1}),
    *("x" * 100_000, "é" * MESSAGE_ID_MAX_CHARS, "é" * (MESSAGE_ID_MAX_CHARS + 1)),
]
TIME_EDGES: list[Any] = [
    *("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+16:00", "0001-01-01T00:00:00-01:00"),
    *("9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59+01:00"),
    *("2025-01-01T00:00:00+16:00", "2025-01-01T00:00:00-23:59", "2025-01-01T00:00:00+24:00"),
    *("2025-01-01", "2025-01-01T00:00:00", "2025-01-01 12:00", "2025-01-01T00:00:00.5Z"),
    *("2025-01-01T00:00:00.123456789Z", "2025-01-01T00:00:00.123456000Z", "2025-13-01"),
    *("1677-09-21T00:12:43.145224Z", "1678-01-01T00:00:00Z", "1677-12-31T23:59:59-00:01"),
    *("2261-12-31T23:59:59.999999Z", "2262-01-01T00:00:00Z", "2262-04-11T23:47:16Z"),
    *(1_700_000_000, 1.7e9, "1700000000", "2025-01-01T00:00:00.123456+05:30"),
]
EDGES = COMMON_EDGES + NUMBER_EDGES + TEXT_EDGES + TIME_EDGES
EDGES_OF: dict[Kind, list[Any]] = {
    ColumnType.float: NUMBER_EDGES,
    ColumnType.int: NUMBER_EDGES,
    ColumnType.bool: NUMBER_EDGES,
    ColumnType.text: TEXT_EDGES,
    "message_id": TEXT_EDGES,
    "time": TIME_EDGES,
}
any_value = st.one_of(st.sampled_from(EDGES), json_values, time_texts())


def storable(kind: Kind) -> st.SearchStrategy[Any]:
    """Values the stores can hold, by the documented rules: each must be stored."""
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
    return {
        ColumnType.float: st.floats(allow_nan=False, allow_infinity=False)
        | st.integers(-(2**53), 2**53),
        ColumnType.int: st.integers(-(2**63), 2**63 - 1),
        ColumnType.bool: st.booleans(),
        ColumnType.text: text,
        "time": time_texts(low=datetime(1678, 1, 2), high=datetime(2261, 12, 30)).filter(
            lambda t: not re.search(r"\.\d{6}0*[1-9]", t)  # no finer than a microsecond
        ),
        "message_id": st.text(
            st.characters(codec="utf-8", exclude_characters="\x00"),
            min_size=1,
            max_size=MESSAGE_ID_MAX_CHARS,
        ),
    }[kind]


# --- checking one value -----------------------------------------------------------------


@pytest.fixture
def registered(client: TestClient) -> TestClient:
    """The client, with every use case of this module registered (again: a no-op)."""
    for use_case in USE_CASES.values():
        response = client.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json"))
        assert response.status_code in (200, 201), response.text
    return client


def post(client: TestClient, url: str, body: Any) -> Any:
    """POST the JSON text Python writes (NaN as NaN, lone surrogates as \\ud800 escapes)."""
    content = json.dumps(body, allow_nan=True)
    return client.post(url, content=content, headers={"Content-Type": "application/json"})


def table_of(slot: Slot, table: str | None = None) -> str:
    return f"{USE_CASES[slot.target].name}_{table or slot.table}"


def stored_rows(pg: Any, table: str) -> int:
    with pg.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{table}"')
        return int(cur.fetchone()[0])


def empty(pg: Any, *tables: str) -> None:
    with pg.cursor() as cur:
        for table in tables:  # DELETE: quicker than TRUNCATE on a table of one row
            cur.execute(f'DELETE FROM "{table}"')


def row_with(slot: Slot, value: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"message_id": "m-1", "ts": GOOD["time"], "y": GOOD[slot.target]}
    row |= {f"f_{t.value}": GOOD[t] for t in TYPES}
    if slot.table == "training":
        row.pop("message_id")  # optional there; the message_id slot sets it
    if value is MISSING:
        row.pop(slot.column, None)
    else:
        row[slot.column] = value
    return row


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace(" ", "T"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_json(value: Any) -> Any:
    """The value the server decodes from the JSON text sent: a surrogate pair in a
    Python str ("\ud83d\ude00") arrives as the one character it encodes."""
    return value if value is MISSING else json.loads(json.dumps(value, allow_nan=True))


def same(kind: Kind, sent: Any, back: Any) -> bool:
    """Whether the value read back is the value sent, typed: numbers of the column's
    type and sign, times as the same instant."""
    if sent is MISSING or sent is None:
        return back is None
    if kind is ColumnType.float:
        return (
            isinstance(back, float)
            and back == sent
            and math.copysign(1, back) == math.copysign(1, sent)
        )
    if kind is ColumnType.int:
        return type(back) is int and back == sent
    if kind is ColumnType.bool:
        return back is sent
    if kind == "time":
        return instant(back) == instant(sent)
    return bool(back == sent)


def check_row(client: TestClient, pg: Any, slot: Slot, value: Any) -> bool:
    """Insert one row with `value` in the slot; True when it was stored (and came back
    equal), False when refused with a 422 naming row 0 and the column."""
    url = f"/ml_data_api/use_cases/{USE_CASES[slot.target].name}/{slot.table}/rows"
    response = post(client, url, {"rows": [row_with(slot, value)]})
    assert response.status_code < 500, f"{slot} = {value!r}: {response.text}"
    if response.status_code != 201:
        assert response.status_code == 422, f"{slot} = {value!r}: {response.text}"
        problem = response.json()["errors"][0]
        assert (problem["row"], problem["column"]) == (0, slot.column), problem
        assert stored_rows(pg, table_of(slot)) == 0
        return False
    assert response.json() == {"inserted": 1, "skipped": 0, "skipped_ids": []}
    rows = client.get(url, params={"last": 5}).json()["rows"]
    empty(pg, table_of(slot))
    assert len(rows) == 1
    back = rows[0][slot.column]
    assert same(slot.kind, as_json(value), back), f"{slot}: sent {value!r}, read back {back!r}"
    return True


# --- the properties ---------------------------------------------------------------------


@PROPERTY
@given(slot=st.sampled_from(SLOTS), value=any_value)
def test_any_json_value_in_any_column_is_stored_equal_or_refused_with_a_422(
    registered, pg, slot, value
):
    check_row(registered, pg, slot, value)


@PROPERTY
@given(data=st.data(), slot=st.sampled_from(SLOTS))
def test_every_value_the_stores_can_hold_is_stored_and_read_back_equal(registered, pg, data, slot):
    value = data.draw(storable(slot.kind), label="value")
    assert check_row(registered, pg, slot, value), f"{slot} = {value!r} was refused"


@pytest.mark.parametrize("slot", SLOTS, ids=str)
def test_every_edge_value_in_every_column_is_stored_equal_or_refused(registered, pg, slot):
    edges = COMMON_EDGES + EDGES_OF[slot.kind]
    stored = [value for value in edges if check_row(registered, pg, slot, value)]
    assert check_row(registered, pg, slot, GOOD[slot.kind])
    if slot.kind == "time":  # the instants pandas can hold, with any offset Python reads
        assert "2025-01-01T00:00:00+16:00" in stored
        assert "2261-12-31T23:59:59.999999Z" in stored
        assert "0001-01-01T00:00:00Z" not in stored


@PROPERTY
@given(target=st.sampled_from(TYPES), value=any_value)
@example(target=ColumnType.int, value=2**63)
@example(target=ColumnType.float, value=-0.0)
@example(target=ColumnType.text, value="\x00")
def test_any_label_is_stored_equal_or_refused(registered, pg, target, value):
    slot = Slot(target, "production", "y", target)
    production, training = table_of(slot), table_of(slot, "training")
    name = USE_CASES[target].name
    row = row_with(slot, None)
    inserted = post(registered, f"/ml_data_api/use_cases/{name}/production/rows", {"rows": [row]})
    assert inserted.status_code == 201, inserted.text
    label = {"message_id": "m-1", "value": value}
    if value is MISSING:
        label.pop("value")

    response = post(registered, f"/ml_data_api/use_cases/{name}/labels", {"labels": [label]})

    assert response.status_code < 500, response.text
    try:
        if response.status_code == 200:
            assert response.json()["labelled"] == 1
            for table in ("production", "training"):
                url = f"/ml_data_api/use_cases/{name}/{table}/rows"
                (back,) = registered.get(url, params={"last": 5}).json()["rows"]
                assert same(target, as_json(value), back["y"]), (
                    f"sent {value!r}, read back {back['y']!r}"
                )
        else:
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["row"] == 0
            assert stored_rows(pg, training) == 0
    finally:
        empty(pg, production, training)


ANY_BYTES = st.binary(max_size=30).map(lambda raw: quote(raw, safe=""))
QUERY_NAMES = st.sampled_from(["start", "end", "last", "limit", "labelled", "other"])


@PROPERTY
@given(
    name=ANY_BYTES | st.sampled_from(list(USE_CASES.values())).map(lambda u: u.name),
    table=ANY_BYTES | st.sampled_from(["training", "production"]),
    query=st.lists(st.tuples(QUERY_NAMES, ANY_BYTES | time_texts()), max_size=4),
    method=st.sampled_from(["GET", "DELETE"]),
)
@example(name="a%00b", table="training", query=[], method="GET")
@example(
    name=USE_CASES[ColumnType.float].name,
    table="training",
    query=[("start", "2025-01-01T00:00:00+16:00"), ("end", "0001-01-01T00:00:00+01:00")],
    method="DELETE",
)
def test_any_path_and_query_is_answered_without_a_server_error(
    registered, name, table, query, method
):
    # Percent-escaped bytes: NUL, invalid UTF-8, slashes, anything a URL can carry.
    encoded = "&".join(f"{key}={value if '%' in value else quote(value)}" for key, value in query)
    for path in (f"/{name}/{table}/rows", f"/{name}/counts", f"/{name}"):
        url = f"/ml_data_api/use_cases{path}?{encoded}"
        response = registered.request(method if path.endswith("rows") else "GET", url)
        assert response.status_code < 500, f"{method} {url}: {response.text}"


def test_the_kept_time_range_is_pandas_range_in_whole_years():
    assert (
        datetime(1678, 1, 1, tzinfo=UTC),
        datetime(2262, 1, 1, tzinfo=UTC),
    ) == (EARLIEST, LATEST)
    assert date(1677, 9, 21) < EARLIEST.date() and LATEST.date() < date(2262, 4, 11)
