"""Ground truth arriving: labels attach to production rows and grow the training table."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.ml_data_api.conftest import sensor_rows


def url(use_case, path: str) -> str:
    return f"/ml_data_api/use_cases/{use_case.name}/{path}"


def test_labels_attach_to_predictions_and_copy_them_into_training(client: TestClient, sensors):
    # Given three predictions without their quality
    rows = [
        {k: v for k, v in r.items() if k != "quality"} | {"prediction": 300.0}
        for r in sensor_rows(3)
    ]
    client.post(url(sensors, "production/rows"), json={"rows": rows})

    # When the true quality of two of them arrives (and one label names no prediction)
    labels = [
        {"message_id": "m-0", "value": 351.5},
        {"message_id": "m-2", "value": 349.0},
        {"message_id": "ghost", "value": 1.0},
    ]
    response = client.post(url(sensors, "labels"), json={"labels": labels})

    # Then those predictions carry it, and training gained exactly those rows
    assert response.status_code == 200, response.text
    assert response.json() == {"labelled": 2, "added_to_training": 2, "unknown": ["ghost"]}
    production = client.get(url(sensors, "production/rows")).json()["rows"]
    assert [r["quality"] for r in production] == [351.5, None, 349.0]
    training = client.get(url(sensors, "training/rows")).json()["rows"]
    assert [(r["message_id"], r["quality"], r["temp_A"]) for r in training] == [
        ("m-0", 351.5, rows[0]["temp_A"]),
        ("m-2", 349.0, rows[2]["temp_A"]),
    ]


def test_labelling_again_adds_nothing_twice(client: TestClient, sensors):
    client.post(url(sensors, "production/rows"), json={"rows": sensor_rows(2, prediction=1.0)})
    labels = {"labels": [{"message_id": "m-1", "value": 340.0}]}

    client.post(url(sensors, "labels"), json=labels)
    again = client.post(url(sensors, "labels"), json=labels)

    assert again.json() == {"labelled": 1, "added_to_training": 0, "unknown": []}
    assert client.get(url(sensors, "counts")).json()["training"] == 1


def test_bad_labels_are_refused_and_nothing_changes(client: TestClient, sensors):
    client.post(url(sensors, "production/rows"), json={"rows": sensor_rows(1, prediction=1.0)})
    bad = [{"message_id": "m-0", "value": "tasty"}]
    response = client.post(url(sensors, "labels"), json={"labels": bad})
    empty = client.post(url(sensors, "labels"), json={"labels": []})

    assert response.status_code == empty.status_code == 422
    assert "column 'value'" in response.json()["detail"]
    assert client.get(url(sensors, "counts")).json()["training"] == 0


def test_reads_can_ask_for_labelled_or_unlabelled_rows_only(client: TestClient, sensors):
    rows = [{k: v for k, v in r.items() if k != "quality"} for r in sensor_rows(4)]
    client.post(url(sensors, "production/rows"), json={"rows": rows})
    client.post(url(sensors, "labels"), json={"labels": [{"message_id": "m-1", "value": 2.0}]})

    labelled = client.get(url(sensors, "production/rows"), params={"labelled": True}).json()
    waiting = client.get(url(sensors, "production/rows"), params={"labelled": False}).json()

    assert [r["message_id"] for r in labelled["rows"]] == ["m-1"]
    assert [r["message_id"] for r in waiting["rows"]] == ["m-0", "m-2", "m-3"]
