"""Inserting, reading and deleting rows, and the original's insert_data route."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from tests.ml_data_api.conftest import T0, sensor_rows


def rows_url(use_case, table: str) -> str:
    return f"/ml_data_api/use_cases/{use_case.name}/{table}/rows"


def counts(client: TestClient, use_case) -> dict[str, int]:
    return client.get(f"/ml_data_api/use_cases/{use_case.name}/counts").json()


def test_ten_thousand_rows_go_in_with_one_request(client: TestClient, sensors):
    rows = sensor_rows(10_000)
    response = client.post(rows_url(sensors, "training"), json={"rows": rows})
    assert response.status_code == 201, response.text
    assert response.json() == {"inserted": 10_000, "skipped": 0, "skipped_ids": []}
    assert counts(client, sensors) == {"training": 10_000, "testing": 0, "production": 0}
    newest = client.get(rows_url(sensors, "training"), params={"last": 1}).json()["rows"][0]
    assert newest["message_id"] == "m-9999"
    assert newest["temp_A"] == rows[-1]["temp_A"]


def test_a_single_row_goes_in_and_comes_back_unchanged(client: TestClient, sensors):
    row = {**sensor_rows(1)[0], "prediction": 351.25, "model_version": "demo:3"}
    response = client.post(rows_url(sensors, "production"), json={"rows": [row]})
    assert response.json() == {"inserted": 1, "skipped": 0, "skipped_ids": []}
    stored = client.get(rows_url(sensors, "production")).json()["rows"]
    assert stored == [
        {**row, "ts": "2025-03-01T00:00:00+00:00", "temp_B": 300.0, "prediction_score": None}
    ]


def test_inserting_the_same_production_rows_again_is_a_no_op(client: TestClient, sensors):
    rows = sensor_rows(1500, prediction=300.0)  # over the COPY threshold
    first = client.post(rows_url(sensors, "production"), json={"rows": rows})
    assert first.json() == {"inserted": 1500, "skipped": 0, "skipped_ids": []}

    # A redelivered batch, a single redelivered row, and a batch repeating a row in itself
    again = client.post(rows_url(sensors, "production"), json={"rows": rows})
    one = client.post(rows_url(sensors, "production"), json={"rows": rows[7:8]})
    doubled = client.post(rows_url(sensors, "production"), json={"rows": sensor_rows(2) * 2})

    assert again.status_code == one.status_code == doubled.status_code == 201
    assert again.json() == {
        "inserted": 0,
        "skipped": 1500,
        "skipped_ids": [r["message_id"] for r in rows],
    }
    assert one.json() == {"inserted": 0, "skipped": 1, "skipped_ids": [rows[7]["message_id"]]}
    assert doubled.json()["skipped"] == 4
    assert sorted(doubled.json()["skipped_ids"]) == sorted(
        r["message_id"] for r in sensor_rows(2) * 2
    )
    assert counts(client, sensors)["production"] == 1500


def test_rows_are_read_newest_n_or_by_time_window_in_time_order(client: TestClient, sensors):
    client.post(rows_url(sensors, "testing"), json={"rows": sensor_rows(60)})

    newest = client.get(rows_url(sensors, "testing"), params={"last": 5}).json()
    window = client.get(
        rows_url(sensors, "testing"),
        params={
            "start": (T0 + timedelta(minutes=10)).isoformat(),
            "end": (T0 + timedelta(minutes=20)).isoformat(),
        },
    ).json()

    assert [r["message_id"] for r in newest["rows"]] == [f"m-{i}" for i in range(55, 60)]
    assert newest["count"] == 5
    assert [r["message_id"] for r in window["rows"]] == [f"m-{i}" for i in range(10, 20)]


def test_deleting_a_window_removes_only_that_window(client: TestClient, sensors):
    client.post(rows_url(sensors, "training"), json={"rows": sensor_rows(30)})
    response = client.delete(
        rows_url(sensors, "training"),
        params={"start": T0.isoformat(), "end": (T0 + timedelta(minutes=10)).isoformat()},
    )
    assert response.json() == {"deleted": 10}
    left = client.get(rows_url(sensors, "training"), params={"last": 100}).json()["rows"]
    assert [r["message_id"] for r in left] == [f"m-{i}" for i in range(10, 30)]


def test_delete_needs_a_window(client: TestClient, sensors):
    client.post(rows_url(sensors, "training"), json={"rows": sensor_rows(3)})
    missing = client.delete(rows_url(sensors, "training"))
    backwards = client.delete(
        rows_url(sensors, "training"),
        params={"start": (T0 + timedelta(hours=1)).isoformat(), "end": T0.isoformat()},
    )
    assert missing.status_code == backwards.status_code == 422
    assert "not before end" in backwards.json()["detail"]
    assert counts(client, sensors)["training"] == 3


def test_the_original_insert_data_route_still_stores_rows(client: TestClient, sensors):
    # The original sent one result object with lower-case column names.
    row = {k.lower(): v for k, v in sensor_rows(1)[0].items()} | {"prediction": 349.5}
    response = client.post(
        "/ml_data_api/insert_data/",
        json={"table_name": "production", "use_case": sensors.name, "data": row},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"inserted": 1, "skipped": 0, "skipped_ids": []}
    stored = client.get(rows_url(sensors, "production")).json()["rows"][0]
    assert stored["temp_A"] == row["temp_a"]
    assert stored["prediction"] == 349.5
