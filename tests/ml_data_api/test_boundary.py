"""Inputs that once gave 500s or were stored wrongly: each is now stored exactly or
refused with a 4xx naming the row and field, and nothing of a refused batch is written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gits_common.schemas import Column, ColumnType, Task, UseCase
from tests.ml_data_api.conftest import T0, sensor_rows, unique


def rows_url(use_case: UseCase, table: str = "training") -> str:
    return f"/ml_data_api/use_cases/{use_case.name}/{table}/rows"


def post_json(client: TestClient, url: str, body: Any) -> Any:
    """POST `body` as the JSON text Python writes: lone surrogates travel as \\ud800
    escapes and NaN as NaN, as a careless client would send them."""
    content = json.dumps(body, allow_nan=True)
    return client.post(url, content=content, headers={"Content-Type": "application/json"})


def count(client: TestClient, use_case: UseCase, table: str = "training") -> int:
    return client.get(f"/ml_data_api/use_cases/{use_case.name}/counts").json()[table]


@pytest.fixture
def mixed(client: TestClient) -> UseCase:
    """A classification use case with a feature of every type and an int target."""
    use_case = UseCase(
        name=unique("mixed"),
        task=Task.classification,
        features=[
            Column(name="pressure", type=ColumnType.float),
            Column(name="batch", type=ColumnType.int),
            Column(name="night", type=ColumnType.bool),
            Column(name="line", type=ColumnType.text),
        ],
        target=Column(name="defect", type=ColumnType.int),
        time_column="ts",
    )
    response = client.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json"))
    assert response.status_code == 201, response.text
    return use_case


def mixed_row(i: int = 0, **change: Any) -> dict[str, Any]:
    row = {
        "message_id": f"r-{i}",
        "ts": (T0 + timedelta(minutes=i)).isoformat(),
        "pressure": 1.5,
        "batch": 3,
        "night": False,
        "line": "A",
        "defect": 0,
    }
    return {**row, **change}


INCOMPRESSIBLE = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(1000))

REFUSED_VALUES = {
    "NUL in a text": ("line", "abc\u0000def", "NUL character at position 3"),
    "lone high surrogate": ("line", "\ud800", "unpaired surrogate U+D800"),
    "lone low surrogate": ("line", "ok\udfff", "unpaired surrogate U+DFFF"),
    "NUL in a message id": ("message_id", "m\u00001", "NUL character"),
    "int of 2**63": ("batch", 2**63, "-2**63 to 2**63-1"),
    "int below -2**63": ("defect", -(2**63) - 1, "-2**63 to 2**63-1"),
    "int a double would round": ("pressure", 2**53 + 1, "cannot be held exactly"),
    "int too large for a double": ("pressure", 10**400, "cannot be held exactly"),
    "bool for a float": ("pressure", True, "valid number"),
    "year 1": ("ts", "0001-01-01T00:00:00Z", "outside the range"),
    "year 1 with an offset": ("ts", "0001-01-01T00:00:00+05:00", "outside the range"),
    "year 9999": ("ts", "9999-12-31T23:59:59-23:59", "outside the range"),
    "a time finer than PostgreSQL keeps": ("ts", "2025-01-01T00:00:00.1234567Z", "microsecond"),
    "a number for a time": ("ts", 1_700_000_000, "ISO 8601"),
    "an empty message id": ("message_id", "", "1 to 512 characters"),
    # 1,000 CJK characters, 3,000 bytes that do not compress: over btree's 2,704.
    "a message id over the index limit": ("message_id", INCOMPRESSIBLE, "1 to 512 characters"),
}


@pytest.mark.parametrize("label", REFUSED_VALUES)
def test_values_no_store_can_hold_are_refused_naming_row_and_column(client, mixed, label):
    column, value, reason = REFUSED_VALUES[label]
    rows = [mixed_row(0), mixed_row(1, **{column: value})]

    response = post_json(client, rows_url(mixed), {"rows": rows})

    assert response.status_code == 422, response.text
    body = response.json()
    assert reason in body["detail"]
    assert body["errors"][0]["row"] == 1
    assert body["errors"][0]["column"] == column
    assert count(client, mixed) == 0


def test_values_at_the_edges_of_the_stores_go_in_and_come_back_unchanged(client, mixed):
    rows = [
        mixed_row(0, batch=2**63 - 1, defect=-(2**63), pressure=2**64),
        mixed_row(1, pressure=-0.0, line='tab\t, quote" newline\n \\. é 😀 \u2028'),
        mixed_row(2, pressure=1e308, ts="2025-03-01T00:02:00.123456+16:00"),
        mixed_row(3, pressure=5e-324, ts="2025-03-01", line=""),
    ]
    response = post_json(client, rows_url(mixed), {"rows": rows})
    assert response.status_code == 201, response.text

    stored = client.get(rows_url(mixed), params={"last": 10}).json()["rows"]

    by_id = {row["message_id"]: row for row in stored}
    assert by_id["r-0"]["batch"] == 2**63 - 1
    assert by_id["r-0"]["defect"] == -(2**63)
    assert by_id["r-0"]["pressure"] == 2**64
    assert str(by_id["r-1"]["pressure"]) == "-0.0"
    assert by_id["r-1"]["line"] == rows[1]["line"]
    assert by_id["r-2"]["pressure"] == 1e308
    assert by_id["r-2"]["ts"] == "2025-02-28T08:02:00.123456+00:00"  # 16 hours before
    assert by_id["r-3"]["pressure"] == 5e-324
    assert by_id["r-3"]["ts"] == "2025-03-01T00:00:00+00:00"
    assert by_id["r-3"]["line"] == ""


def test_texts_survive_the_copy_path_of_large_batches(client, mixed):
    # Over 500 rows go through COPY ... CSV, where quotes, commas, "\." and empty
    # strings (as opposed to NULL) mean something.
    tricky = ["\\.", "a\n\\.\nb", '"', ",", "\r\n", "\\N", "NULL", "", " ", "é😀"]
    rows = [mixed_row(i, line=tricky[i % len(tricky)]) for i in range(600)]

    response = post_json(client, rows_url(mixed), {"rows": rows})
    assert response.status_code == 201, response.text

    stored = client.get(rows_url(mixed), params={"last": 600}).json()["rows"]
    assert [r["line"] for r in stored] == [r["line"] for r in rows]


def test_a_bad_key_is_named_in_an_answer_that_can_be_encoded(client, mixed):
    # The unknown column's name holds a lone surrogate; the answer names it escaped.
    response = post_json(client, rows_url(mixed), {"rows": [mixed_row(0, **{"x\ud800": 1})]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["column"] == "x\\ud800"


@pytest.mark.parametrize(
    "start",
    ["2025-03-01T00:00:00+16:00", "2025-03-01T16:00:00+23:59", "2025-02-28T23:00:00-01:00"],
)
def test_query_times_with_any_offset_python_reads_select_by_instant(client, mixed, start):
    post_json(client, rows_url(mixed), {"rows": [mixed_row(i) for i in range(5)]})
    utc = datetime.fromisoformat(start).astimezone(UTC)

    response = client.get(rows_url(mixed), params={"start": start, "end": T0 + timedelta(1)})

    assert response.status_code == 200, response.text
    expected = [f"r-{i}" for i in range(5) if T0 + timedelta(minutes=i) >= utc]
    assert [r["message_id"] for r in response.json()["rows"]] == expected


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"start": "0001-01-01T00:00:00+01:00"}, "start"),
        ({"end": "9999-12-31T23:59:59-05:00"}, "end"),
        ({"start": "2025-01-01T00:00:00+24:00"}, "start"),
        ({"start": "2025-01-01\x00"}, "start"),
        ({"last": "\x00"}, "last"),
    ],
)
def test_query_times_out_of_range_or_malformed_are_refused(client, mixed, params, name):
    response = client.get(rows_url(mixed), params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", name]


def test_a_delete_outside_the_kept_range_is_refused_and_deletes_nothing(client, mixed):
    post_json(client, rows_url(mixed), {"rows": [mixed_row(i) for i in range(3)]})
    response = client.delete(
        rows_url(mixed), params={"start": "0001-01-01T00:00:00+01:00", "end": T0.isoformat()}
    )
    assert response.status_code == 422
    assert count(client, mixed) == 3


@pytest.mark.parametrize(
    "path",
    [
        "/ml_data_api/use_cases/a%00b",
        "/ml_data_api/use_cases/a%00b/counts",
        "/ml_data_api/use_cases/a%00b/training/rows",
        "/ml_data_api/use_cases/Bad-Name/counts",
        "/ml_data_api/use_cases/%ED%A0%80/counts",
        f"/ml_data_api/use_cases/{'a' * 41}/counts",
    ],
)
def test_illegal_use_case_names_in_paths_are_refused_not_looked_up(client, path):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["path", "name"]


def test_illegal_use_case_names_in_a_body_are_refused(client):
    response = client.post(
        "/ml_data_api/insert_data/",
        json={"table_name": "production", "use_case": "a\x00b", "data": {}},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "use_case"]


def test_a_repeated_query_parameter_is_refused_and_deletes_nothing(client, mixed):
    # Given ten rows, one a minute
    post_json(client, rows_url(mixed), {"rows": [mixed_row(i) for i in range(10)]})
    at = [(T0 + timedelta(minutes=i)).isoformat() for i in range(10)]

    # When start is given twice (FastAPI would take the last one: [8, 10) not [0, 10))
    response = client.delete(
        rows_url(mixed), params=[("start", at[8]), ("end", at[9]), ("start", at[0])]
    )

    # Then the request is refused naming the parameter, and nothing is deleted
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "loc": ["query", "start"],
            "msg": "given 2 times; give it once",
            "type": "repeated_parameter",
        }
    ]
    assert "query.start" in response.json()["detail"]
    assert count(client, mixed) == 10


def test_unknown_or_single_query_parameters_may_still_repeat_freely(client, mixed):
    post_json(client, rows_url(mixed), {"rows": [mixed_row(i) for i in range(3)]})
    response = client.get(rows_url(mixed), params=[("last", "2"), ("utm", "a"), ("utm", "b")])
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_keys_that_differ_only_by_case_in_the_original_insert_are_refused(client, sensors):
    row = {"message_id": "legacy-1", "ts": T0.isoformat(), "temp_A": 1.0, "TEMP_a": 2.0}
    row |= {"temp_B": 3.0, "humidity": 4.0}

    response = client.post(
        "/ml_data_api/insert_data/",
        json={"table_name": "production", "use_case": sensors.name, "data": [row]},
    )

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "row 0: keys 'temp_A' and 'TEMP_a' both name column 'temp_A'" in detail
    assert response.json()["errors"][0]["column"] == "temp_A"
    assert count(client, sensors, "production") == 0


def test_the_original_insert_still_matches_one_key_per_column_ignoring_case(client, sensors):
    row = {"MESSAGE_ID": "legacy-2", "TS": T0.isoformat(), "temp_a": 1.0}
    row |= {"Temp_B": 3.0, "HUMIDITY": 4.0}
    response = client.post(
        "/ml_data_api/insert_data/",
        json={"table_name": "production", "use_case": sensors.name, "data": row},
    )
    assert response.status_code == 201, response.text


def test_a_use_case_description_no_store_can_hold_is_refused(client):
    use_case = UseCase(
        name=unique("described"),
        task=Task.regression,
        features=[Column(name="x")],
        target=Column(name="y"),
    ).model_dump(mode="json")

    nul = post_json(client, "/ml_data_api/use_cases", {**use_case, "description": "a\x00b"})
    lone = post_json(client, "/ml_data_api/use_cases", {**use_case, "description": "\udc00"})
    fine = post_json(client, "/ml_data_api/use_cases", {**use_case, "description": "ok é"})

    assert nul.status_code == lone.status_code == 422
    assert nul.json()["errors"][0]["loc"] == ["body", "description"]
    assert fine.status_code == 201, fine.text
    again = post_json(client, "/ml_data_api/use_cases", {**use_case, "description": "ok é"})
    assert again.status_code == 200  # the same definition again is still a no-op


def test_two_different_labels_for_one_message_are_refused(client, mixed):
    post_json(client, rows_url(mixed, "production"), {"rows": [mixed_row(0, defect=None)]})
    labels = [{"message_id": "r-0", "value": 1}, {"message_id": "r-0", "value": 2}]

    response = client.post(f"/ml_data_api/use_cases/{mixed.name}/labels", json={"labels": labels})

    assert response.status_code == 422, response.text
    assert "row 1: message_id 'r-0' already has another value in row 0" in response.json()["detail"]
    same = client.post(
        f"/ml_data_api/use_cases/{mixed.name}/labels", json={"labels": [labels[0], labels[0]]}
    )
    assert same.status_code == 200, same.text
    assert same.json()["labelled"] == 1


def test_a_label_no_store_can_hold_is_refused(client, mixed):
    post_json(client, rows_url(mixed, "production"), {"rows": [mixed_row(0, defect=None)]})
    response = post_json(
        client,
        f"/ml_data_api/use_cases/{mixed.name}/labels",
        {"labels": [{"message_id": "r-0", "value": 2**63}]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "row": 0,
        "column": "value",
        "reason": response.json()["errors"][0]["reason"],
    }
    assert count(client, mixed, "training") == 0


def test_the_existing_sensor_rows_still_go_in(client, sensors):
    response = client.post(rows_url(sensors), json={"rows": sensor_rows(3)})
    assert response.status_code == 201
