"""With TimescaleDB, use-case tables become hypertables whose unique index includes the
time column. No TimescaleDB server exists here, so this reads the statements issued."""

from __future__ import annotations

from ml_data_api import store
from tests.ml_data_api.conftest import sensor_use_case


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
