"""`python -m workers`: one worker replica for SERVICE_NAME. SIGTERM or Ctrl-C finishes
the batch in hand, returns the rest to the queue and exits cleanly.

    python -m workers                        # consume
    python -m workers --replay-dead-letters  # move SERVICE_NAME's dead letters back
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.lifecycle import stop_on_signals
from gits_common.logs import bind_process_fields
from gits_common.metrics import served_registry
from gits_common.settings import configure_logging
from workers.consumer import Consumer
from workers.handler import Handler
from workers.journal import Journal
from workers.metrics import WorkerMetrics
from workers.models import ModelCache
from workers.replay import replay_dead_letters
from workers.settings import Settings, load_settings

log = logging.getLogger("workers")


# The exit status of a worker replaced because a model call would not end (EX_TEMPFAIL):
# its supervisor starts a fresh one.
WEDGED = 75


async def consume(settings: Settings) -> bool:
    """Run one replica until SIGTERM or SIGINT, or until a model call is stuck; whether
    it was stuck (the process must then end without waiting for that thread)."""
    stop = stop_on_signals()
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.api_token)
    ml_data = MlDataClient(settings.ml_data_api_url, settings.api_token)
    models = ModelCache(settings.service_name, queue_manager, ml_data, worker_id=settings.worker_id)
    journal = Journal(queue_manager, max_kept=settings.journal_max_records, retry_seconds=2.0)
    handler = Handler(
        service=settings.service_name,
        worker_id=settings.worker_id,
        ml_data=ml_data,
        models=models,
        journal=journal,
        retry_attempts=settings.retry_attempts,
        retry_base_delay=settings.retry_base_delay,
        max_message_bytes=settings.max_message_bytes,
        predict_seconds=settings.predict_seconds,
        stop=stop,
        metrics=WorkerMetrics(
            settings.service_name,
            served_registry(settings.metrics_port, host=settings.metrics_host),
        ),
    )
    consumer = Consumer(settings, handler, models, queue_manager)
    sending = asyncio.create_task(journal.run(stop))
    try:
        await consumer.run(stop)
    finally:
        sending.cancel()
        if not await journal.flush():
            log.error("queue_manager out of reach: %d job record(s) not recorded", journal.kept)
        await queue_manager.close()
        await ml_data.close()
    log.info("worker %s stopped; handled %d messages", settings.worker_id, consumer.handled)
    return handler.wedged


async def replay(settings: Settings) -> None:
    """Move the service's dead letters back to its queue."""
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.api_token)
    try:
        service = await queue_manager.service(settings.service_name)
    finally:
        await queue_manager.close()
    await replay_dead_letters(
        settings.amqp_url, service=settings.service_name, routing_key=service.routing_key
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
    configure_logging("workers")
    settings = load_settings()
    bind_process_fields(worker=settings.worker_id)
    if args.replay_dead_letters:
        asyncio.run(replay(settings))
    elif asyncio.run(consume(settings)):
        log.error("a model call would not end: exiting so that a fresh worker takes over")
        logging.shutdown()
        os._exit(WEDGED)  # the stuck thread would keep a normal exit waiting forever


if __name__ == "__main__":
    main(sys.argv[1:])
