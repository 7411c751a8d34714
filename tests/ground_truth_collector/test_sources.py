"""The collector's label sources besides the demo: a CSV file that grows while the
collector runs, and a PostgreSQL table or view; and the settings that choose them."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from gits_common import errors
from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_common.settings import MissingSetting
from gits_ml.demo import PRODUCT_QUALITY
from ground_truth_collector.__main__ import label_source
from ground_truth_collector.settings import load_settings
from ground_truth_collector.sources import CsvLabels, DemoLabels, TableLabels
from tests.conftest import free_port

QUALITY = Column(name="quality")
IDS = ["m-1", "m-2", "m-3", "m-4"]


class Clock:
    """A clock the test moves: seconds since the epoch."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_rows_appended_to_the_csv_are_found_at_the_next_read(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("message_id,quality\nm-1,350.5\n")
    source = CsvLabels(path, QUALITY)
    assert source.labels_for(IDS) == {"m-1": 350.5}

    with path.open("a") as file:
        file.write("m-2,351\nm-1,349\n")  # a correction of m-1 too

    assert source.labels_for(IDS) == {"m-1": 349.0, "m-2": 351.0}


def test_the_labels_that_arrived_are_all_at_first_then_the_new_and_changed(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("message_id,quality\nm-1,350.5\nm-2,351\n")
    source = CsvLabels(path, QUALITY)
    assert source.arrived() == {"m-1": 350.5, "m-2": 351.0}
    assert source.arrived() == {}

    with path.open("a") as file:
        file.write("m-3,352\nm-1,349\nm-2,351\n")  # new, corrected, the same again

    assert source.arrived() == {"m-3": 352.0, "m-1": 349.0}
    assert source.arrived() == {}


def test_unusable_rows_are_skipped_with_one_warning_naming_how_many(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="ground_truth_collector")
    path = tmp_path / "labels.csv"
    path.write_text("message_id,quality\nm-1,abc\nm-2,\nm-3,352\n,4\n")
    source = CsvLabels(path, QUALITY)

    assert source.labels_for(IDS) == {"m-3": 352.0}
    assert source.labels_for(IDS) == {"m-3": 352.0}  # not read again, not said again

    [warning] = warnings_of(caplog)
    assert warning.startswith(f"skipped 3 row(s) of {path}")
    assert "line 2: quality 'abc' is not a finite number" in warning


def test_a_last_line_still_being_written_waits_until_the_file_settles(tmp_path):
    # Given a label cut short as it is written: "352.75" so far only "352.7"
    path = tmp_path / "labels.csv"
    path.write_text("message_id,quality\nm-1,350\nm-2,352.7")
    clock = Clock()
    source = CsvLabels(path, QUALITY, clock=clock)

    # Then the row waits while the file is fresh
    assert source.labels_for(IDS) == {"m-1": 350.0}
    # And is read in full once the writer is done
    with path.open("a") as file:
        file.write("5\n")
    assert source.labels_for(IDS) == {"m-1": 350.0, "m-2": 352.75}
    # And a file that simply has no final newline gives its last row once settled
    path.write_text("message_id,quality\nm-3,1.5")
    assert source.labels_for(IDS) == {}
    clock.now += 60
    assert source.labels_for(IDS) == {"m-3": 1.5}


def test_a_missing_file_or_column_is_not_found_until_it_is_there(tmp_path):
    path = tmp_path / "later.csv"
    source = CsvLabels(path, QUALITY)
    with pytest.raises(errors.NotFound, match="no label file"):
        source.labels_for(IDS)

    path.write_text("message_id,label\nm-1,1\n")
    with pytest.raises(errors.NotFound, match="no column 'quality'"):
        source.labels_for(IDS)

    path.write_text("message_id,quality\nm-1,1\n")
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime, whatever the clock
    assert source.labels_for(IDS) == {"m-1": 1.0}


@pytest.fixture
def label_table(pg) -> Iterator[str]:
    """A table whose name needs quoting, with a label of each kind, and a view on it."""
    name = 'Lab labels; DROP TABLE "x'
    with pg.cursor() as cur:
        cur.execute(
            f'CREATE TABLE "{name.replace(chr(34), chr(34) * 2)}" '
            "(message_id text PRIMARY KEY, quality text, grade int)"
        )
        cur.execute(
            f'INSERT INTO "{name.replace(chr(34), chr(34) * 2)}" VALUES '
            "('m-1', '350.5', 1), ('m-2', NULL, 2), ('m-3', 'n/a', NULL), ('other', '1', 1)"
        )
        cur.execute(
            "CREATE VIEW lab_view AS SELECT message_id, grade AS quality "
            f'FROM "{name.replace(chr(34), chr(34) * 2)}"'
        )
    yield name
    with pg.cursor() as cur:
        cur.execute("DROP VIEW lab_view")
        cur.execute(f'DROP TABLE "{name.replace(chr(34), chr(34) * 2)}"')


def test_labels_are_read_from_a_table_by_id(postgres_dsn, label_table, caplog):
    caplog.set_level(logging.WARNING, logger="ground_truth_collector")
    source = TableLabels(postgres_dsn, label_table, QUALITY)
    try:
        # A NULL label is not known yet; one of the wrong type is skipped and said
        assert source.labels_for(IDS) == {"m-1": 350.5}
        assert source.labels_for([]) == {}
    finally:
        source.close()
    [warning] = warnings_of(caplog)
    assert "skipped 1 label(s)" in warning and "'n/a' is not a finite number" in warning


def test_labels_are_read_from_a_view_and_a_schema_qualified_name(postgres_dsn, label_table):
    grade = Column(name="quality", type=ColumnType.int)
    source = TableLabels(postgres_dsn, "public.lab_view", grade)
    try:
        assert source.labels_for(IDS) == {"m-1": 1, "m-2": 2}
    finally:
        source.close()


def test_a_missing_table_or_column_is_not_found_and_a_database_down_unavailable(
    postgres_dsn, label_table
):
    with pytest.raises(errors.NotFound, match="label table no_such_table"):
        TableLabels(postgres_dsn, "no_such_table", QUALITY).labels_for(IDS)
    with pytest.raises(errors.NotFound, match="label table"):
        TableLabels(postgres_dsn, label_table, Column(name="missing")).labels_for(IDS)
    down = f"postgresql://u:p@127.0.0.1:{free_port()}/x?connect_timeout=2"
    with pytest.raises(errors.Unavailable, match="label database unavailable"):
        TableLabels(down, "labels", QUALITY).labels_for(IDS)


def test_the_table_source_reconnects_after_losing_its_connection(postgres_dsn, label_table):
    source = TableLabels(postgres_dsn, label_table, QUALITY)
    assert source.labels_for(IDS) == {"m-1": 350.5}
    assert source._conn is not None
    pid = source._conn.get_backend_pid()
    with psycopg2.connect(postgres_dsn) as admin, admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()

    with pytest.raises(errors.Unavailable):
        source.labels_for(IDS)
    assert source.labels_for(IDS) == {"m-1": 350.5}
    source.close()


def test_the_settings_choose_the_source_and_the_demo_stays_the_default(
    monkeypatch, tmp_path, postgres_dsn
):
    use_case = UseCase(name="pq", task=Task.regression, features=[Column(name="t")], target=QUALITY)
    for name in ("GROUND_TRUTH_SOURCE", "GROUND_TRUTH_CSV", "GROUND_TRUTH_TABLE"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(label_source(load_settings(), PRODUCT_QUALITY), DemoLabels)
    # The demo source knows only the demos' labels: a user's use case is told what to set.
    with pytest.raises(errors.InvalidInput, match="set GROUND_TRUTH_SOURCE to csv or table"):
        label_source(load_settings(), use_case)
    # ... unless it holds a demo's rows under another name
    monkeypatch.setenv("GROUND_TRUTH_DEMO", "product_quality")
    assert isinstance(label_source(load_settings(), use_case), DemoLabels)
    monkeypatch.delenv("GROUND_TRUTH_DEMO")

    monkeypatch.setenv("GROUND_TRUTH_SOURCE", "csv")
    with pytest.raises(MissingSetting, match="GROUND_TRUTH_CSV"):
        load_settings()
    monkeypatch.setenv("GROUND_TRUTH_CSV", str(tmp_path / "labels.csv"))
    source = label_source(load_settings(), use_case)
    assert isinstance(source, CsvLabels) and source.path == Path(tmp_path / "labels.csv")

    monkeypatch.setenv("GROUND_TRUTH_SOURCE", "table")
    monkeypatch.setenv("GROUND_TRUTH_TABLE", "lab.results")
    monkeypatch.setenv("GROUND_TRUTH_DSN", postgres_dsn)
    source = label_source(load_settings(), use_case)
    assert isinstance(source, TableLabels) and source.table == "lab.results"

    monkeypatch.setenv("GROUND_TRUTH_SOURCE", "kafka")
    with pytest.raises(MissingSetting, match="demo, csv, table"):
        load_settings()


def test_a_use_case_without_a_target_has_nothing_to_label(monkeypatch, tmp_path):
    monkeypatch.setenv("GROUND_TRUTH_SOURCE", "csv")
    monkeypatch.setenv("GROUND_TRUTH_CSV", str(tmp_path / "labels.csv"))
    anomaly = UseCase(name="an", task=Task.anomaly, features=[Column(name="t")])

    with pytest.raises(errors.InvalidInput, match="no target"):
        label_source(load_settings(), anomaly)
