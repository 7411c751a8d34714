"""The ground truth collector labels predictions once their labels are due, resumes where
it stopped, and never sends a label twice."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gits_common.clients import MlDataClient, rows_from_frame
from gits_common.schemas import Column, Table
from gits_ml.demo import PRODUCT_QUALITY, TARGET, DemoConfig, generate
from gits_ml.demos import DEMOS
from ground_truth_collector.collector import Collector, Cursor
from ground_truth_collector.sources import CsvLabels, DemoLabels, LabelSource
from ml_data_api.app import create_app
from ml_data_api.settings import load_settings
from tests.conftest import LiveServer

CONFIG = DemoConfig(history_hours=100, production_minutes=600, ground_truth_every_minutes=5)
DEMO = generate(CONFIG)
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
TRUTH = dict(zip(DEMO.ground_truth.message_id, DEMO.ground_truth[TARGET], strict=True))


@pytest.fixture(scope="module")
def api_url(postgres_dsn):
    with LiveServer(create_app(load_settings())) as server:
        yield server.url


def run(coroutine):
    return asyncio.run(coroutine)


class Stack:
    """A use case with 600 predictions, one a second up to NOW, sent as run `r1`."""

    def __init__(self, url: str, token: str, state) -> None:
        self.url, self.token, self.state = url, token, state
        self.name = f"gt_{uuid.uuid4().hex[:8]}"
        production = DEMO.production.assign(
            message_id=DEMO.production.message_id + "~r1",
            timestamp=[NOW - timedelta(seconds=600 - i) for i in range(600)],
            prediction=350.0,
        )
        run(self._setup(production))

    async def _setup(self, production) -> None:
        async with self.client() as client:
            await client.register_use_case(PRODUCT_QUALITY.model_copy(update={"name": self.name}))
            await client.insert_rows(self.name, Table.production, rows_from_frame(production))

    @contextlib.asynccontextmanager
    async def client(self):
        client = MlDataClient(self.url, self.token)
        try:
            yield client
        finally:
            await client.close()

    def collect(
        self, now: datetime, *, batch_size: int = 1000, source: LabelSource | None = None
    ) -> int:
        async def go() -> int:
            async with self.client() as client:
                collector = Collector(
                    client=client,
                    source=source or DemoLabels(DEMOS["product_quality"], CONFIG),
                    use_case=self.name,
                    time_column="timestamp",
                    cursor=Cursor(self.state),
                    delay=timedelta(seconds=60),
                    overlap=timedelta(seconds=30),
                    batch_size=batch_size,
                )
                return await collector.run_once(now)

        return run(go())

    def rows(self, table: Table, **params) -> list[dict]:
        async def go() -> list[dict]:
            async with self.client() as client:
                return await client.read_rows(self.name, table, last=10_000, **params)

        return run(go())


@pytest.fixture
def stack(api_url, api_token, tmp_path):
    return Stack(api_url, api_token, tmp_path / "cursor.json")


def due_labels(before: datetime) -> dict[str, float]:
    """The true labels of the readings taken before `before`, by production message id."""
    ids = DEMO.production.message_id[
        [NOW - timedelta(seconds=600 - i) < before for i in range(600)]
    ]
    return {f"{i}~r1": TRUTH[i] for i in ids if i in TRUTH}


def test_labels_arrive_after_the_delay_on_their_predictions_and_in_training(stack):
    sent = stack.collect(NOW)

    expected = due_labels(NOW - timedelta(seconds=60))
    assert sent == len(expected) > 50
    labelled = stack.rows(Table.production, labelled=True)
    assert {r["message_id"]: r["quality"] for r in labelled} == pytest.approx(expected)
    training = stack.rows(Table.training)
    assert sorted(r["message_id"] for r in training) == sorted(expected)


def test_a_restarted_collector_resumes_and_sends_nothing_twice(stack):
    first = stack.collect(NOW - timedelta(seconds=300))
    second = stack.collect(NOW)  # a new collector, same cursor file
    third = stack.collect(NOW)

    assert first == len(due_labels(NOW - timedelta(seconds=360)))
    assert first + second == len(due_labels(NOW - timedelta(seconds=60)))
    assert third == 0
    training = [r["message_id"] for r in stack.rows(Table.training)]
    assert len(training) == len(set(training)) == first + second


def test_even_a_lost_cursor_sends_no_label_twice(stack):
    sent = stack.collect(NOW)
    stack.state.unlink()

    assert stack.collect(NOW) == 0
    assert len(stack.rows(Table.training)) == sent


def test_pages_of_predictions_are_all_labelled(stack):
    assert stack.collect(NOW, batch_size=7) == len(due_labels(NOW - timedelta(seconds=60)))


def test_a_late_prediction_is_still_labelled(stack):
    # Given a collector past NOW - 60 s, when a prediction for a reading taken at NOW - 80 s
    # is stored only now (a worker caught up after an outage)
    stack.collect(NOW)
    late_id = next(iter(TRUTH))
    row = DEMO.production.set_index("message_id").loc[[late_id]].reset_index()
    row = row.assign(
        message_id=f"{late_id}~late", prediction=1.0, timestamp=NOW - timedelta(seconds=80)
    )

    async def insert() -> None:
        async with stack.client() as client:
            await client.insert_rows(stack.name, Table.production, rows_from_frame(row))

    run(insert())
    # Then the next collection labels it (it looks back GROUND_TRUTH_OVERLAP_SECONDS)
    assert stack.collect(NOW) == 1


def test_labels_from_a_growing_csv_arrive_as_the_file_grows(stack, tmp_path):
    # Given a lab that writes its results to a CSV, the first two so far
    due = list(due_labels(NOW - timedelta(seconds=60)).items())
    path = tmp_path / "lab.csv"
    path.write_text("message_id,quality\n" + "".join(f"{m},{q}\n" for m, q in due[:2]))
    source = CsvLabels(path, Column(name="quality"))

    # When the collector runs, then again once the lab has written the rest
    first = stack.collect(NOW, source=source)
    with path.open("a") as file:
        file.write("".join(f"{m},{q}\n" for m, q in due[2:]))
    second = stack.collect(NOW, source=source)

    # Then every label arrived once, on its prediction
    assert (first, second) == (2, len(due) - 2)
    labelled = stack.rows(Table.production, labelled=True)
    assert {r["message_id"]: r["quality"] for r in labelled} == pytest.approx(dict(due))
