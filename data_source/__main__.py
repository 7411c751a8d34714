"""`python -m data_source`: publish production readings to the sensor exchange at
DATA_SOURCE_RATE readings a second (.env.example and `make run`: 1; without a setting,
0.5, the original's one every 2 seconds), until done, SIGTERM or Ctrl-C. The readings
are the demo's, or a CSV file's rows for a registered use case (`--csv`, the code
`gits publish` runs). While RabbitMQ is unreachable, it retries every 2 seconds.

    python -m data_source                 # DATA_SOURCE_RATE, DATA_SOURCE_COUNT from .env
    python -m data_source --rate 500      # load test
    python -m data_source --loop          # replay forever
    python -m data_source --use-case quality_class   # another demo, on its own routing key
    python -m data_source --use-case diabetes --csv stream.csv --routing-key diabetes
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from data_source.metrics import PublisherMetrics
from data_source.publisher import Stream, messages, publish_reliably
from data_source.settings import Settings, api_token, load_settings
from gits_common import csv_files, errors
from gits_common.clients import MlDataClient
from gits_common.lifecycle import stop_on_signals
from gits_common.metrics import served_registry
from gits_common.schemas import UseCase
from gits_common.settings import configure_logging
from gits_ml.demo import PRODUCT_QUALITY
from gits_ml.demos import DEMOS

log = logging.getLogger("data_source")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options; those left out are None, for the settings to fill in."""
    parser = argparse.ArgumentParser(
        prog="python -m data_source",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, help="messages per second (DATA_SOURCE_RATE)")
    parser.add_argument("--count", type=int, help="0: the whole split (DATA_SOURCE_COUNT)")
    parser.add_argument("--loop", action="store_true", help="replay the split forever")
    parser.add_argument("--routing-key", help="default: DATA_SOURCE_ROUTING_KEY")
    parser.add_argument(
        "--use-case",
        help="the registered use case whose features the messages carry "
        "(DATA_SOURCE_USE_CASE; the demo's product_quality)",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        help="publish this file's rows (its message_id column, or <file stem>-<line>) "
        "instead of the demo's (DATA_SOURCE_CSV)",
    )
    parser.add_argument(
        "--run",
        default=datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
        help="tag in every message id of a demo run (default: the start time)",
    )
    args = parser.parse_args(argv)
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be above 0")
    return args


def with_defaults(args: argparse.Namespace, settings: Settings) -> argparse.Namespace:
    """The options, with the settings where an option was left out."""
    return argparse.Namespace(
        **{
            **vars(args),
            "rate": settings.rate if args.rate is None else args.rate,
            "count": settings.count if args.count is None else args.count,
            "routing_key": args.routing_key
            or routing_key_of(args.use_case or settings.use_case, settings),
            "use_case": args.use_case or settings.use_case,
            "csv": args.csv or settings.csv,
        }
    )


def routing_key_of(use_case: str, settings: Settings) -> str:
    """The routing key a use case's messages get when none is asked for: a demo's own
    (`gits_ml.demos.DEMOS`), but DATA_SOURCE_ROUTING_KEY for product_quality and for a
    user's use case."""
    if use_case in DEMOS and use_case != PRODUCT_QUALITY.name:
        return DEMOS[use_case].routing_key
    return settings.routing_key


def csv_stream(use_case: UseCase, path: Path, *, routing_key: str, loop: bool) -> Stream:
    """The messages of a CSV file's rows (`gits_common.csv_files.read_rows`); raises
    its `InvalidInput` or `NotFound` before anything is sent."""
    frame = csv_files.read_rows(use_case, path, with_target=False, time_now=False)
    return messages(frame, use_case, routing_key=routing_key, loop=loop, run=None)


async def stream_of(args: argparse.Namespace, settings: Settings) -> Stream:
    """The demo's readings, or the CSV file's rows for the use case ml_data_api holds."""
    if args.csv is None:
        demo = DEMOS.get(args.use_case)
        if demo is None:
            raise errors.InvalidInput(
                f"only the demos ({', '.join(DEMOS)}) have built-in readings; "
                f"give --csv for {args.use_case}"
            )
        production: pd.DataFrame = demo.generate(settings.demo).production
        return messages(
            production, demo.use_case, routing_key=args.routing_key, loop=args.loop, run=args.run
        )
    client = MlDataClient(settings.ml_data_api_url, api_token())
    try:
        use_case = await client.use_case(args.use_case)
    finally:
        await client.close()
    return csv_stream(use_case, args.csv, routing_key=args.routing_key, loop=args.loop)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Publish until done or signalled, reconnecting when the broker goes away; returns
    how many messages were confirmed."""
    stop = stop_on_signals()
    stream = await stream_of(args, settings)
    log.info("publishing to %r at %g msg/s", args.routing_key, args.rate)
    metrics = PublisherMetrics(
        use_case=args.use_case,
        routing_key=args.routing_key,
        registry=served_registry(settings.metrics_port, host=settings.metrics_host),
    )
    sent = await publish_reliably(
        settings.amqp_url,
        stream,
        routing_key=args.routing_key,
        rate=args.rate,
        count=args.count,
        stop=stop,
        metrics=metrics,
    )
    log.info("published %d messages", sent)
    return sent


def main(argv: list[str]) -> int:
    """Exit 0 when every message was confirmed or the run was stopped; 2 with one line
    when the file or use case is wrong."""
    args = parse_args(argv)
    configure_logging("data_source")
    settings = load_settings()
    try:
        asyncio.run(run(with_defaults(args, settings), settings))
    except (errors.InvalidInput, errors.NotFound) as exc:
        log.error("%s", exc.detail)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
