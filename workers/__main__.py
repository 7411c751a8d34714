"""`python -m workers`: one worker replica for SERVICE_NAME. SIGTERM or Ctrl-C finishes
the batch in hand, returns the rest to the queue and exits cleanly.

    python -m workers                        # consume
    python -m workers --replay-dead-letters  # move SERVICE_NAME's dead letters back
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.lifecycle import stop_on_signals
from gits_common.settings import configure_logging
from workers.consumer import Consumer
from workers.handler import Handler
from workers.models import ModelCache
from workers.replay import replay_dead_letters
from workers.settings import Settings, load_settings

log = logging.getLogger("workers")


async def consume(settings: Settings) -> None:
    """Run one replica until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.api_token)
    ml_data = MlDataClient(settings.ml_data_api_url, settings.api_token)
    models = ModelCache(settings.service_name, queue_manager, ml_data)
    handler = Handler(
        service=settings.service_name,
        worker_id=settings.worker_id,
        queue_manager=queue_manager,
        ml_data=ml_data,
        models=models,
        retry_attempts=settings.retry_attempts,
        retry_base_delay=settings.retry_base_delay,
        stop=stop,
    )
    consumer = Consumer(settings, handler, models, queue_manager)
    try:
        await consumer.run(stop)
    finally:
        await queue_manager.close()
        await ml_data.close()
    log.info("worker %s stopped; handled %d messages", settings.worker_id, consumer.handled)


async def replay(settings: Settings) -> None:
    """Move the service's dead letters back to its queue."""
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.api_token)
    try:
        service = await queue_manager.service(settings.service_name)
    finally:
        await queue_manager.close()
    await replay_dead_letters(
        settings.amqp_url, service=settings.service_name, routing_key=service["routing_key"]
    )


def main(argv: list[str]) -> None:
    """Consume, or replay dead letters."""
    parser = argparse.ArgumentParser(
        prog="python -m workers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--replay-dead-letters", action="store_true")
    args = parser.parse_args(argv)
    configure_logging()
    settings = load_settings()
    asyncio.run(replay(settings) if args.replay_dead_letters else consume(settings))


if __name__ == "__main__":
    main(sys.argv[1:])
