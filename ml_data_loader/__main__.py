"""`python -m ml_data_loader`: load the demo use case, or any use case from CSV files,
and optionally give a service its first model.

    python -m ml_data_loader                       # demo product_quality
    python -m ml_data_loader --bootstrap-model     # ... and train, upload and bind a model
    python -m ml_data_loader --use-case uc.json --training train.csv --testing test.csv
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import pandas as pd

from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.errors import GitsError
from gits_common.schemas import Table, UseCase
from gits_common.settings import configure_logging
from gits_ml.demo import PRODUCT_QUALITY
from ml_data_loader.bootstrap import bootstrap_model
from ml_data_loader.loader import demo_splits, load, read_csv
from ml_data_loader.settings import Settings, load_settings

log = logging.getLogger("ml_data_loader")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m ml_data_loader",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--use-case", type=Path, help="use case definition (JSON)")
    parser.add_argument("--training", type=Path, help="CSV of labelled training rows")
    parser.add_argument("--testing", type=Path, help="CSV of labelled testing rows")
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait this long for the APIs to come up",
    )
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument(
        "--bootstrap-model",
        action="store_true",
        help="if DEMO_SERVICE has no model, train one and bind it",
    )
    args = parser.parse_args(argv)
    if args.use_case is None and (args.training or args.testing):
        parser.error("--training and --testing need --use-case")
    if args.bootstrap_model and args.use_case is not None and args.training is None:
        parser.error("--bootstrap-model needs --training data to train on")
    return args


def splits_of(
    args: argparse.Namespace, settings: Settings
) -> tuple[UseCase, dict[Table, pd.DataFrame]]:
    """The use case and the frames to load, from the options."""
    if args.use_case is None:
        return PRODUCT_QUALITY, demo_splits(settings.demo_seed)
    use_case = UseCase.model_validate_json(args.use_case.read_text())
    paths = {Table.training: args.training, Table.testing: args.testing}
    return use_case, {t: read_csv(use_case, p) for t, p in paths.items() if p is not None}


async def run(args: argparse.Namespace, settings: Settings) -> None:
    """Load the data, then bootstrap the model if asked."""
    ml_data = MlDataClient(settings.ml_data_api_url, settings.api_token)
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.api_token)
    try:
        await ml_data.wait_until_up(args.wait)
        use_case, splits = splits_of(args, settings)
        await load(ml_data, use_case, splits, batch_size=args.batch_size)
        log.info("row counts now: %s", await ml_data.counts(use_case.name))
        if args.bootstrap_model:
            await queue_manager.wait_until_up(args.wait)
            await bootstrap_model(
                queue_manager,
                use_case,
                splits[Table.training],
                service=settings.bootstrap_service,
                routing_key=settings.bootstrap_routing_key,
            )
    finally:
        await ml_data.close()
        await queue_manager.close()


def main(argv: list[str]) -> int:
    """Exit code 0 on success, 1 with a reason otherwise, 2 with the usage for bad
    options (before anything is loaded or connected to)."""
    args = parse_args(argv)
    configure_logging()
    try:
        asyncio.run(run(args, load_settings()))
    except GitsError as exc:
        log.error("loading failed: %s", exc.detail)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
