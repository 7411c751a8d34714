"""With TimescaleDB, use-case tables become hypertables whose unique index includes the
time column; without it, plain tables with a time index. The statements of both are
read here whatever the server has, and the tables a registration makes are checked on
the server the suite runs against, as the kind it has (the `timescaledb` fixture)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from ml_data_api import store
from tests.ml_data_api.conftest import T0, sensor_rows, sensor_use_case


class RecordingCursor:
    def __init__(self, conn) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def execute(self, query, params=None) -> None:
        text = query if isinstance(query, str) else query.as_string(self.conn)
        self.statements.append(text % tuple(repr(p) for p in params) if params else text)


def test_hypertable_tables_are_partitioned_on_time_and_unique_on_message_and_time(pg):
    cursor = RecordingCursor(pg)
    use_case = sensor_use_case("plant")

    store._create_table(cursor, use_case, store.Table.production, hypertable=True)

    statements = "\n".join(cursor.statements)
    assert "SELECT create_hypertable('plant_production', 'ts')" in statements
    assert 'ON "plant_production" ("message_id", "ts")' in statements
    assert "DESC" not in statements  # TimescaleDB makes the time index itself


def test_plain_tables_get_a_time_index_and_unique_message_ids(pg):
    cursor = RecordingCursor(pg)

    store._create_table(cursor, sensor_use_case("plant"), store.Table.production, hypertable=False)

    statements = "\n".join(cursor.statements)
    assert "create_hypertable" not in statements
    assert 'ON "plant_production" ("ts" DESC)' in statements
    assert 'ON "plant_production" ("message_id")' in statements


def test_registered_tables_are_of_the_kind_the_server_offers(client: TestClient, pg, timescaledb):
    # Given the server the suite runs against, when a use case is registered and rows
    # a day apart are stored
    use_case = sensor_use_case()
    response = client.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json"))
    assert response.status_code == 201, response.text
    rows = sensor_rows(3, start=T0) + sensor_rows(3, start=T0 + timedelta(days=30), prefix="n")
    stored = client.post(
        f"/ml_data_api/use_cases/{use_case.name}/training/rows", json={"rows": rows}
    )
    assert stored.status_code == 201, stored.text

    # Then on TimescaleDB its tables are hypertables, whose rows live in time chunks; on
    # plain PostgreSQL each is one table holding its rows itself
    assert response.json()["storage"] == ("hypertable" if timescaledb else "table")
    training = store.table_name(use_case.name, store.Table.training)
    with pg.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM ONLY "{training}"')
        assert cur.fetchone()[0] == (0 if timescaledb else 6)
        cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", (training,))
        chunks = cur.fetchone()[0]
        assert chunks >= 2 if timescaledb else chunks == 0  # a chunk a week by default
        cur.execute(f'SELECT count(*) FROM "{training}"')
        assert cur.fetchone()[0] == 6
    if timescaledb:
        tables = [store.table_name(use_case.name, table) for table in store.Table]
        with pg.cursor() as cur:
            cur.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables "
                "WHERE hypertable_name = ANY(%s)",
                (tables,),
            )
            assert {name for (name,) in cur.fetchall()} == set(tables)
