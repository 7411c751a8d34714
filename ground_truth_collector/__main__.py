"""`python -m ground_truth_collector`: attach the demo's true labels to the predictions
they belong to, GROUND_TRUTH_DELAY_SECONDS after each reading, every
GROUND_TRUTH_INTERVAL_SECONDS, and add those rows to the training table."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import timedelta

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.lifecycle import pause, stop_on_signals
from gits_common.schemas import UseCase
from gits_common.settings import configure_logging
from ground_truth_collector.collector import Collector, Cursor
from ground_truth_collector.settings import Settings, load_settings
from ground_truth_collector.sources import DemoLabels

log = logging.getLogger("ground_truth_collector")


async def main(settings: Settings) -> None:
    """Collect until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    client = MlDataClient(settings.ml_data_api_url, settings.api_token)
    try:
        use_case = await _registered(client, settings.use_case, stop)
        if use_case is None:
            return
        collector = Collector(
            client=client,
            source=DemoLabels(settings.demo),
            use_case=use_case.name,
            time_column=use_case.time_column,
            cursor=Cursor(settings.state_dir / f"{use_case.name}.json"),
            delay=timedelta(seconds=settings.delay_seconds),
            overlap=timedelta(seconds=settings.overlap_seconds),
            batch_size=settings.batch_size,
        )
        log.info(
            "collecting labels for %s, %gs after each reading",
            use_case.name,
            settings.delay_seconds,
        )
        await collector.run(settings.interval_seconds, stop)
    finally:
        await client.close()


async def _registered(client: MlDataClient, name: str, stop: asyncio.Event) -> UseCase | None:
    """The use case once ml_data_api has it (it may still be loading), or None if stopped."""
    for attempt in itertools.count():
        try:
            return await client.use_case(name)
        except (errors.NotFound, errors.Unavailable) as exc:
            if attempt % 15 == 0:
                log.info("waiting for use case %s: %s", name, exc.detail)
        await pause(stop, 2.0)
        if stop.is_set():
            return None
    return None


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main(load_settings()))
