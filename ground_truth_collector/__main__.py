"""`python -m ground_truth_collector`: attach true labels to the predictions they
belong to, GROUND_TRUTH_DELAY_SECONDS after each reading, every
GROUND_TRUTH_INTERVAL_SECONDS, and add those rows to the training table, until SIGTERM
or Ctrl-C. The labels come from GROUND_TRUTH_SOURCE: the demo's generator (demo), a CSV
file (csv, GROUND_TRUTH_CSV) or a PostgreSQL table or view (table, GROUND_TRUTH_TABLE
in GROUND_TRUTH_DSN). Settings come from the environment, then .env; there are no
options."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
from datetime import timedelta

from tenacity import AsyncRetrying, retry_if_exception_type, wait_fixed

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.lifecycle import log_while_waiting, pause, stop_on_signals, stop_when_stopped
from gits_common.metrics import served_registry
from gits_common.schemas import UseCase
from gits_common.settings import configure_logging
from gits_ml.demos import DEMOS
from ground_truth_collector.collector import Collector, Cursor
from ground_truth_collector.metrics import LabelMetrics
from ground_truth_collector.settings import Settings, load_settings
from ground_truth_collector.sources import CsvLabels, DemoLabels, LabelSource, TableLabels

log = logging.getLogger("ground_truth_collector")
POLL_SECONDS = 2.0  # how often to ask whether the use case is there yet


async def collect(settings: Settings) -> None:
    """Collect until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    # served while the use case is awaited too
    metrics = LabelMetrics(
        settings.use_case, served_registry(settings.metrics_port, host=settings.metrics_host)
    )
    client = MlDataClient(settings.ml_data_api_url, settings.api_token)
    try:
        use_case = await _registered(client, settings.use_case, stop)
        if use_case is None:
            return
        source = label_source(settings, use_case)
        collector = Collector(
            client=client,
            source=source,
            use_case=use_case.name,
            time_column=use_case.time_column,
            cursor=Cursor(settings.state_dir / f"{use_case.name}.json"),
            delay=timedelta(seconds=settings.delay_seconds),
            overlap=timedelta(seconds=settings.overlap_seconds),
            batch_size=settings.batch_size,
            metrics=metrics,
        )
        log.info(
            "collecting labels for %s from the %s source, %gs after each reading",
            use_case.name,
            settings.source,
            settings.delay_seconds,
        )
        try:
            await collector.run(settings.interval_seconds, stop)
        finally:
            source.close()
    finally:
        await client.close()


def label_source(settings: Settings, use_case: UseCase) -> LabelSource:
    """The label source the settings choose, checking labels against the use case's
    target. Raises `InvalidInput` for a use case without a target (nothing to label)."""
    if settings.source == "demo":
        demo = settings.demo_name or use_case.name
        if demo not in DEMOS:
            raise errors.InvalidInput(
                f"GROUND_TRUTH_SOURCE=demo labels only the demos ({', '.join(DEMOS)}), not "
                f"{demo!r}: set GROUND_TRUTH_SOURCE to csv or table (or GROUND_TRUTH_DEMO "
                "to the demo whose rows the use case holds)"
            )
        return DemoLabels(DEMOS[demo], settings.demo)
    if use_case.target is None:
        raise errors.InvalidInput(f"use case {use_case.name!r} has no target column to label")
    if settings.source == "csv":
        assert settings.csv_path is not None  # load_settings requires it
        column = use_case.source_names.get(use_case.target.name)
        return CsvLabels(settings.csv_path, use_case.target, column=column)
    assert settings.table is not None and settings.dsn is not None
    return TableLabels(settings.dsn, settings.table, use_case.target)


async def _registered(client: MlDataClient, name: str, stop: asyncio.Event) -> UseCase | None:
    """The use case once ml_data_api has it (it may still be loading, or not up yet), or
    None if stopped first. Only "not there yet" and "unreachable" are waited out."""

    async def fetch() -> UseCase | None:
        # A stop during the pause ends the wait without one more request.
        return None if stop.is_set() else await client.use_case(name)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type((errors.NotFound, errors.Unavailable)),
        stop=stop_when_stopped(stop),
        wait=wait_fixed(POLL_SECONDS),
        sleep=functools.partial(pause, stop),
        before_sleep=log_while_waiting(log, "waiting for use case %s: %s", name),
        retry_error_callback=lambda _state: None,  # stopped while waiting
    )
    use_case: UseCase | None = await retrying(fetch)
    return use_case


def main(argv: list[str]) -> None:
    """Refuse any argument (exit status 2, with the usage), then collect."""
    parser = argparse.ArgumentParser(prog="python -m ground_truth_collector", description=__doc__)
    parser.parse_args(argv)
    configure_logging("ground_truth_collector")
    asyncio.run(collect(load_settings()))


if __name__ == "__main__":
    main(sys.argv[1:])
