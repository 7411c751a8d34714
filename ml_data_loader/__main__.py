"""`python -m ml_data_loader`: load the demo use cases, or any use case from CSV files,
and optionally give a service its first model.

    python -m ml_data_loader                       # the demos (DEMO_USE_CASES: all three)
    python -m ml_data_loader --bootstrap-model     # ... and train, upload and bind a model
    python -m ml_data_loader --demo quality_class  # one demo
    python -m ml_data_loader --use-case uc.json --training train.csv --testing test.csv
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gits_common import errors
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.errors import GitsError
from gits_common.schemas import Table, UseCase
from gits_common.settings import configure_logging
from gits_ml.demo import PRODUCT_QUALITY
from gits_ml.demos import DEMOS
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
    parser.add_argument(
        "--demo",
        action="append",
        choices=list(DEMOS),
        help="load this demo use case (repeat for more; default DEMO_USE_CASES)",
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
    if args.use_case is not None and args.demo:
        parser.error("--demo and --use-case exclude each other")
    if args.bootstrap_model and args.use_case is not None and args.training is None:
        parser.error("--bootstrap-model needs --training data to train on")
    return args


@dataclass(frozen=True)
class Loading:
    """One use case to load, and the service its first model is bound to."""

    use_case: UseCase
    splits: dict[Table, pd.DataFrame]
    service: str
    routing_key: str


def loadings(args: argparse.Namespace, settings: Settings) -> list[Loading]:
    """What the options ask to load: the use case of --use-case with its CSV files, or
    the demos (--demo, else DEMO_USE_CASES). Raises `errors.InvalidInput` for a demo name
    DEMO_USE_CASES gives that is not one."""
    if args.use_case is not None:
        use_case = UseCase.model_validate_json(args.use_case.read_text())
        paths = {Table.training: args.training, Table.testing: args.testing}
        splits = {t: read_csv(use_case, p) for t, p in paths.items() if p is not None}
        return [
            Loading(use_case, splits, settings.bootstrap_service, settings.bootstrap_routing_key)
        ]
    names = args.demo or settings.demo_use_cases
    unknown = sorted(set(names) - set(DEMOS))
    if unknown:
        raise errors.InvalidInput(
            f"DEMO_USE_CASES names {unknown}; the demos are {', '.join(DEMOS)}"
        )
    out = []
    for name in dict.fromkeys(names):
        demo = DEMOS[name]
        own = name == PRODUCT_QUALITY.name  # DEMO_SERVICE and DEMO_ROUTING_KEY are its
        out.append(
            Loading(
                demo.use_case,
                demo_splits(settings.demo_seed, name),
                settings.bootstrap_service if own else demo.service,
                settings.bootstrap_routing_key if own else demo.routing_key,
            )
        )
    return out


async def run(args: argparse.Namespace, settings: Settings) -> None:
    """Load the data, then bootstrap each model if asked."""
    ml_data = MlDataClient(settings.ml_data_api_url, settings.api_token)
    queue_manager = QueueManagerClient(settings.queue_manager_url, settings.api_token)
    try:
        await ml_data.wait_until_up(args.wait)
        for loading in loadings(args, settings):
            use_case = loading.use_case
            await load(ml_data, use_case, loading.splits, batch_size=args.batch_size)
            log.info("row counts now: %s", await ml_data.counts(use_case.name))
            if args.bootstrap_model:
                await queue_manager.wait_until_up(args.wait)
                await bootstrap_model(
                    queue_manager,
                    use_case,
                    loading.splits[Table.training],
                    service=loading.service,
                    routing_key=loading.routing_key,
                    evaluation=loading.splits.get(Table.testing),
                )
    finally:
        await ml_data.close()
        await queue_manager.close()


def main(argv: list[str]) -> int:
    """Exit code 0 on success, 1 with a reason otherwise, 2 with the usage for bad
    options (before anything is loaded or connected to)."""
    args = parse_args(argv)
    configure_logging("ml_data_loader")
    try:
        asyncio.run(run(args, load_settings()))
    except GitsError as exc:
        log.error("loading failed: %s", exc.detail)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
