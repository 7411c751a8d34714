"""The ground-truth collector counts the labels ml_data_api took and its runs, served on
GROUND_TRUTH_METRICS_PORT."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gits_common.clients import MlDataClient
from gits_common.metrics import process_registry, serve_metrics
from gits_common.schemas import Table
from gits_ml.demos import DEMOS
from ground_truth_collector.collector import Collector, Cursor
from ground_truth_collector.metrics import LabelMetrics
from ground_truth_collector.sources import DemoLabels
from tests.conftest import free_port
from tests.ground_truth_collector.test_collector import CONFIG, Stack, api_url  # noqa: F401
from tests.metrics_helpers import moved, scrape, value

SENT = "gits_ground_truth_labels_sent_total"
RUNS = "gits_ground_truth_runs_total"


def test_labels_sent_and_runs_move_the_counters(api_url, api_token, tmp_path):  # noqa: F811
    # Given predictions whose labels are all due, and a collector serving its metrics
    stack = Stack(api_url, api_token, tmp_path / "cursor.json")
    registry = process_registry()
    metrics = LabelMetrics(stack.name, registry)
    port = free_port()
    assert serve_metrics(port, host="127.0.0.1", registry=registry)
    url = f"http://127.0.0.1:{port}/metrics"
    before = scrape(url)

    # When it runs once, and is stopped while it waits for the next run
    async def go() -> None:
        client = MlDataClient(api_url, api_token)
        collector = Collector(
            client=client,
            source=DemoLabels(DEMOS["product_quality"], CONFIG),
            use_case=stack.name,
            time_column="timestamp",
            cursor=Cursor(stack.state),
            delay=timedelta(seconds=60),
            overlap=timedelta(seconds=30),
            batch_size=1000,
            metrics=metrics,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(collector.run(60, stop))
        try:
            while value(await asyncio.to_thread(scrape, url), RUNS) < 1:
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
            await client.close()

    asyncio.run(go())

    # Then every label ml_data_api took is counted, and the run as a good one
    after = scrape(url)
    labelled = stack.rows(Table.production, labelled=True)
    assert len(labelled) > 50
    assert moved(before, after, SENT, use_case=stack.name) == len(labelled)
    assert moved(before, after, RUNS, use_case=stack.name, outcome="ok") == 1
    assert moved(before, after, RUNS, use_case=stack.name, outcome="failed") == 0
