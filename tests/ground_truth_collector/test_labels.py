"""Labels from a CSV reach the production rows they name in one call (what `gits labels`
does), each checked against the target's type first: a bad row stops the upload with
its line named, and nothing is sent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.schemas import Column, ColumnType, Table, Task, UseCase
from ground_truth_collector.labels import (
    AttachResult,
    attach_csv_labels,
    parse_csv_labels,
    parse_label,
)
from ml_data_api.app import create_app
from ml_data_api.settings import load_settings
from tests.conftest import LiveServer

T0 = datetime(2025, 3, 1, tzinfo=UTC)
QUALITY = Column(name="quality")


@pytest.mark.parametrize(
    ("value", "column_type", "label"),
    [
        ("362.5", ColumnType.float, 362.5),
        (" 7 ", ColumnType.float, 7.0),
        (12, ColumnType.float, 12.0),
        ("3", ColumnType.int, 3),
        ("3.0", ColumnType.int, 3),
        ("TRUE", ColumnType.bool, True),
        ("0", ColumnType.bool, False),
        ("scrap", ColumnType.text, "scrap"),
        (2, ColumnType.text, "2"),
    ],
)
def test_a_label_is_read_as_its_targets_type(value, column_type, label):
    parsed = parse_label(value, Column(name="y", type=column_type))

    assert parsed == label and type(parsed) is type(label)


@pytest.mark.parametrize(
    ("value", "column_type", "reason"),
    [
        ("", ColumnType.float, "y is missing"),
        (None, ColumnType.text, "y is missing"),
        ("abc", ColumnType.float, "y 'abc' is not a finite number"),
        ("nan", ColumnType.float, "is not a finite number"),
        ("-inf", ColumnType.float, "is not a finite number"),
        (True, ColumnType.float, "is not a finite number"),
        ("3.5", ColumnType.int, "y '3.5' is not a whole number"),
        ("1e30", ColumnType.int, "is not a whole number"),
        ("maybe", ColumnType.bool, "is not true or false"),
        (0.5, ColumnType.text, "is not a class label"),
    ],
)
def test_a_label_that_does_not_fit_its_target_is_refused_saying_why(value, column_type, reason):
    with pytest.raises(ValueError, match=reason):
        parse_label(value, Column(name="y", type=column_type))


@pytest.fixture(scope="module")
def api_url(postgres_dsn: str) -> Iterator[str]:
    with LiveServer(create_app(load_settings())) as server:
        yield server.url


class Platform:
    """An ml_data_api with a use case whose production table has predictions m-0..m-9."""

    def __init__(self, url: str, token: str, target: Column = QUALITY) -> None:
        self.url, self.token = url, token
        self.use_case = UseCase(
            name=f"labels_{uuid.uuid4().hex[:8]}",
            task=Task.regression if target.type is ColumnType.float else Task.classification,
            features=[Column(name="temp")],
            target=target,
            time_column="ts",
        )
        prediction = 1.0 if target.type is ColumnType.float else "unknown"
        rows = [
            {
                "message_id": f"m-{i}",
                "ts": (T0 + timedelta(minutes=i)).isoformat(),
                "temp": 200.0 + i,
                "prediction": prediction,
            }
            for i in range(10)
        ]

        async def setup(client: MlDataClient) -> None:
            await client.register_use_case(self.use_case)
            await client.insert_rows(self.use_case.name, Table.production, rows)

        self.call(setup)

    def call(self, work: Any) -> Any:
        async def go() -> Any:
            client = MlDataClient(self.url, self.token)
            try:
                return await work(client)
            finally:
                await client.close()

        return asyncio.run(go())

    def attach(self, path: Path, **options: Any) -> AttachResult:
        result: AttachResult = self.call(
            lambda client: attach_csv_labels(client, self.use_case.name, path, **options)
        )
        return result

    def labelled(self, table: Table = Table.production) -> dict[str, Any]:
        assert self.use_case.target is not None
        name, target = self.use_case.name, self.use_case.target.name
        rows = self.call(lambda client: client.read_rows(name, table, last=100, labelled=True))
        return {row["message_id"]: row[target] for row in rows}


@pytest.fixture
def platform(api_url: str, api_token: str) -> Platform:
    return Platform(api_url, api_token)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_labels_from_a_csv_reach_their_predictions_and_the_training_table(platform, tmp_path):
    # Given a CSV with five labels, two of them for readings never predicted, and an
    # extra column
    labels = write(
        tmp_path / "labels.csv",
        "message_id,quality,operator\n"
        "m-1,350.5,ann\nm-2,351,bob\nm-3, 352.25 ,ann\nnever-1,1,x\nnever-2,2,x\n",
    )

    # When they are attached, two a request
    result = platform.attach(labels, batch_size=2)

    # Then three production rows got theirs, two ids were unknown, and training grew
    assert result == AttachResult(labelled=3, unknown=2)
    expected = {"m-1": 350.5, "m-2": 351.0, "m-3": 352.25}
    assert platform.labelled() == expected
    assert platform.labelled(Table.training) == expected
    # And attaching the same file again changes nothing
    assert platform.attach(labels) == AttachResult(labelled=3, unknown=2)
    assert len(platform.labelled(Table.training)) == 3


def test_a_later_row_of_an_id_wins(platform, tmp_path):
    labels = write(tmp_path / "l.csv", "message_id,quality\nm-1,1\nm-1,2\n")

    assert platform.attach(labels) == AttachResult(labelled=1, unknown=0)
    assert platform.labelled() == {"m-1": 2.0}


def test_a_bad_label_stops_the_upload_naming_its_line_and_nothing_is_sent(platform, tmp_path):
    labels = write(
        tmp_path / "labels.csv", "message_id,quality\nm-1,350\nm-2,n/a\nm-3,\n,5\nm-4,inf\n"
    )

    with pytest.raises(errors.InvalidInput) as refused:
        platform.attach(labels)

    assert refused.value.detail.startswith("4 row(s) of ")
    assert "line 3: quality 'n/a' is not a finite number" in refused.value.detail
    assert [e["reason"] for e in refused.value.errors] == [
        "line 3: quality 'n/a' is not a finite number",
        "line 4: quality is missing",
        "line 5: message_id is missing",
        "line 6: quality 'inf' is not a finite number",
    ]
    assert platform.labelled() == {}


def test_a_csv_without_the_target_column_is_refused_naming_what_it_has(platform, tmp_path):
    labels = write(tmp_path / "labels.csv", "message_id,Quality\nm-1,350\n")

    with pytest.raises(errors.NotFound, match=r"no column 'quality' .*message_id, Quality"):
        platform.attach(labels)


def test_a_missing_file_and_an_unknown_use_case_are_not_found(platform, tmp_path):
    with pytest.raises(errors.NotFound, match="no label file"):
        platform.attach(tmp_path / "absent.csv")
    labels = write(tmp_path / "labels.csv", "message_id,quality\nm-1,350\n")
    with pytest.raises(errors.NotFound, match="unknown use case"):
        platform.call(lambda client: attach_csv_labels(client, "no_such_use_case", labels))


def test_class_labels_may_be_text_or_whole_numbers(api_url, api_token, tmp_path):
    platform = Platform(api_url, api_token, Column(name="grade", type=ColumnType.text))
    labels = write(tmp_path / "labels.csv", "message_id,grade\nm-1,good\nm-2,3\n")

    assert platform.attach(labels) == AttachResult(labelled=2, unknown=0)
    assert platform.labelled() == {"m-1": "good", "m-2": "3"}


def test_a_target_renamed_at_creation_is_found_by_the_files_name():
    target = Column(name="Quality_pct", type=ColumnType.float)
    text = "message_id,Quality %\na,1.5\nb,2\n"

    parsed = parse_csv_labels(text, target, source="labels.csv", column="Quality %")

    assert parsed.labels == {"a": 1.5, "b": 2.0}
    with pytest.raises(errors.NotFound, match="it needs 'message_id' and 'Quality_pct'"):
        parse_csv_labels(text, target, source="labels.csv")
