"""The loader seeds training and testing through ml_data_api, and twice is once."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from gits_common.clients import MlDataClient
from gits_common.schemas import Column, ColumnType, Table, Task, UseCase
from gits_ml.demo import DemoConfig, generate
from ml_data_api.app import create_app
from ml_data_api.settings import load_settings
from ml_data_loader.__main__ import main
from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def live_api(postgres_dsn):
    with LiveServer(create_app(load_settings())) as server:
        yield server


class SyncMlData:
    """The async ml_data_api client, called from a synchronous test."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def __getattr__(self, name: str):
        async def call(*args, **kwargs):
            client = MlDataClient(self.url, self.token)
            try:
                return await getattr(client, name)(*args, **kwargs)
            finally:
                await client.close()

        return lambda *args, **kwargs: asyncio.run(call(*args, **kwargs))


@pytest.fixture
def client(live_api, api_token):
    return SyncMlData(live_api.url, api_token)


def test_loading_the_demo_twice_changes_nothing(live_api, client, monkeypatch, caplog):
    monkeypatch.setenv("ML_DATA_API_URL", live_api.url)
    caplog.set_level(logging.INFO)
    demo = generate(DemoConfig(seed=7))

    assert main([]) == 0
    first = client.counts("product_quality")
    newest = client.read_rows("product_quality", Table.training, last=1)[0]
    assert main([]) == 0

    # (production is not the loader's: other tests of the session may have added rows)
    assert (first["training"], first["testing"]) == (len(demo.training), len(demo.testing))
    assert client.counts("product_quality") == first
    expected = demo.training.iloc[-1]
    assert newest["message_id"] == expected["message_id"]
    assert newest["quality"] == pytest.approx(expected["quality"])
    assert f"training: 0 rows new, {len(demo.training)} already there" in caplog.text


def test_any_use_case_loads_from_csv_files(live_api, client, monkeypatch, tmp_path):
    monkeypatch.setenv("ML_DATA_API_URL", live_api.url)
    use_case = UseCase(
        name="pumps_csv",
        task=Task.classification,
        features=[Column(name="vibration"), Column(name="rpm", type=ColumnType.int)],
        target=Column(name="failure", type=ColumnType.bool),
        time_column="time",
    )
    (tmp_path / "uc.json").write_text(json.dumps(use_case.model_dump(mode="json")))
    (tmp_path / "train.csv").write_text(
        "time,vibration,rpm,failure\n2025-01-01T00:00:00Z,0.5,1500,false\n"
        "2025-01-01T00:01:00Z,2.5,1480,true\n"
    )
    (tmp_path / "test.csv").write_text("time,vibration,rpm,failure\n2025-01-02,0.7,1490,false\n")

    code = main(
        [
            "--use-case",
            str(tmp_path / "uc.json"),
            "--training",
            str(tmp_path / "train.csv"),
            "--testing",
            str(tmp_path / "test.csv"),
        ]
    )

    assert code == 0
    assert client.counts("pumps_csv") == {"training": 2, "testing": 1, "production": 0}
    rows = client.read_rows("pumps_csv", Table.training)
    assert [(r["rpm"], r["failure"]) for r in rows] == [(1500, False), (1480, True)]


def test_loader_explains_when_ml_data_api_is_not_there(monkeypatch, caplog):
    monkeypatch.setenv("ML_DATA_API_URL", "http://127.0.0.1:9")
    assert main(["--wait", "0"]) == 1
    assert "ml_data_api unreachable" in caplog.text


def test_loader_reports_a_csv_that_does_not_fit_the_use_case(
    live_api, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv("ML_DATA_API_URL", live_api.url)
    use_case = UseCase(
        name="bad_csv",
        task=Task.regression,
        features=[Column(name="x")],
        target=Column(name="y"),
        time_column="t",
    )
    (tmp_path / "uc.json").write_text(use_case.model_dump_json())
    (tmp_path / "train.csv").write_text("t,y,z\n2025-01-01,2.0,3.0\n")  # no x
    (tmp_path / "test.csv").write_text("t,x,y\n2025-01-01,abc,2.0\n")

    code = main(
        ["--use-case", str(tmp_path / "uc.json"), "--training", str(tmp_path / "train.csv")]
    )
    bad_value = main(
        ["--use-case", str(tmp_path / "uc.json"), "--testing", str(tmp_path / "test.csv")]
    )

    assert code == 1 and bad_value == 1
    assert "train.csv has no column 'x' (it has t, y, z)" in caplog.text
    assert "test.csv, line 2: x 'abc' is not a valid value" in caplog.text


def test_each_demo_loads_with_its_targets_type(live_api, client, monkeypatch):
    monkeypatch.setenv("ML_DATA_API_URL", live_api.url)
    assert main(["--demo", "sensor_anomaly", "--demo", "quality_class"]) == 0

    anomaly = client.read_rows("sensor_anomaly", Table.testing, last=1800)
    assert {row["anomaly"] for row in anomaly} == {0, 1}
    assert client.use_case("sensor_anomaly").task is Task.anomaly
    grades = {row["grade"] for row in client.read_rows("quality_class", Table.training, last=500)}
    assert grades == {"in_spec", "off_spec"}


def test_an_unknown_demo_is_named(live_api, monkeypatch, caplog, capsys):
    monkeypatch.setenv("ML_DATA_API_URL", live_api.url)
    monkeypatch.setenv("DEMO_USE_CASES", "product_quality,steel_plates")
    assert main([]) == 1
    assert "DEMO_USE_CASES names ['steel_plates']" in caplog.text
    with pytest.raises(SystemExit) as exit_:
        main(["--demo", "steel_plates"])
    assert exit_.value.code == 2
    assert "invalid choice: 'steel_plates'" in capsys.readouterr().err
