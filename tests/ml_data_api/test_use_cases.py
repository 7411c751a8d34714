"""Use cases are data: registering one creates its tables, whatever its columns."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gits_common.schemas import Column, ColumnType, Task, UseCase
from tests.ml_data_api.conftest import sensor_use_case, unique


def columns_of(pg, table: str) -> dict[str, tuple[str, str]]:
    with pg.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = %s",
            (table,),
        )
        return {name: (kind, nullable) for name, kind, nullable in cur.fetchall()}


def indexes_of(pg, table: str) -> list[str]:
    with pg.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table,))
        return [row[0] for row in cur.fetchall()]


def test_registering_two_different_use_cases_creates_their_own_tables(
    client: TestClient, pg, timescaledb
):
    # Given a regression use case on floats and a classification one on other types
    regression = sensor_use_case()
    classification = UseCase(
        name=unique("defects"),
        task=Task.classification,
        features=[
            Column(name="pressure", type=ColumnType.float),
            Column(name="batch_size", type=ColumnType.int),
            Column(name="line", type=ColumnType.text),
            Column(name="night_shift", type=ColumnType.bool),
        ],
        target=Column(name="defect", type=ColumnType.text),
        time_column="measured_at",
    )

    # When both are registered
    for use_case in (regression, classification):
        response = client.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json"))
        assert response.status_code == 201, response.text
        assert response.json()["storage"] == ("hypertable" if timescaledb else "table")

    # Then each has three tables shaped by its own definition
    reg = columns_of(pg, f"{regression.name}_training")
    assert reg["temp_A"] == ("double precision", "NO")
    assert reg["ts"] == ("timestamp with time zone", "NO")
    assert reg["quality"] == ("double precision", "NO")
    cls = columns_of(pg, f"{classification.name}_production")
    assert cls["batch_size"] == ("bigint", "NO")
    assert cls["line"] == ("text", "NO")
    assert cls["night_shift"] == ("boolean", "NO")
    assert cls["defect"] == ("text", "YES")  # ground truth arrives later
    assert cls["prediction"] == ("text", "YES")  # labels of the target's type
    assert cls["message_id"] == ("text", "NO")
    assert "temp_A" not in cls
    # A time index either way (TimescaleDB makes its own); a hypertable's unique index
    # must hold its time column
    unique_on = "(message_id, measured_at)" if timescaledb else "(message_id)"
    for table in ("training", "testing", "production"):
        indexes = indexes_of(pg, f"{classification.name}_{table}")
        assert any(i.endswith("(measured_at DESC)") for i in indexes), indexes
        assert any("UNIQUE INDEX" in i and i.endswith(unique_on) for i in indexes), indexes

    listed = {u["use_case"]["name"] for u in client.get("/ml_data_api/use_cases").json()}
    assert {regression.name, classification.name} <= listed


def test_registering_the_same_definition_again_changes_nothing(client: TestClient, sensors):
    again = client.post("/ml_data_api/use_cases", json=sensors.model_dump(mode="json"))
    assert again.status_code == 200
    assert again.json()["use_case"] == sensors.model_dump(mode="json")


def test_a_different_definition_under_a_taken_name_is_refused(client: TestClient, sensors, pg):
    changed = sensors.model_copy(update={"features": sensors.features[:1]})
    response = client.post("/ml_data_api/use_cases", json=changed.model_dump(mode="json"))
    assert response.status_code == 409
    assert "different definition" in response.json()["detail"]
    assert "temp_B" in columns_of(pg, f"{sensors.name}_training")


def test_bad_use_case_definitions_are_refused_with_a_reason(client: TestClient):
    base = sensor_use_case().model_dump(mode="json")
    cases = {
        "reserved column": {**base, "features": [{"name": "prediction", "type": "float"}]},
        "sql in a name": {**base, "features": [{"name": "x; DROP TABLE y", "type": "float"}]},
        "upper-case use case name": {**base, "name": "Sensors"},
        "regression without target": {**base, "target": None},
        "duplicate column": {**base, "features": [{"name": "a"}, {"name": "A"}]},
        "unknown type": {**base, "features": [{"name": "a", "type": "complex"}]},
    }
    for label, body in cases.items():
        response = client.post("/ml_data_api/use_cases", json=body)
        assert response.status_code == 422, label
        assert response.json()["detail"], label


def test_unknown_use_case_is_404_with_its_name(client: TestClient):
    response = client.get("/ml_data_api/use_cases/no_such_case")
    assert response.status_code == 404
    assert "no_such_case" in response.json()["detail"]
