"""`python -m ml_data_loader`: load the demo use case, or any use case from CSV files.

python -m ml_data_loader                       # demo product_quality
python -m ml_data_loader --use-case uc.json --training train.csv --testing test.csv
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gits_common.clients import MlDataClient
from gits_common.demo import PRODUCT_QUALITY
from gits_common.errors import GitsError
from gits_common.schemas import Table, UseCase
from gits_common.settings import configure_logging
from ml_data_loader.loader import demo_splits, load, read_csv
from ml_data_loader.settings import load_settings

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
        help="wait this long for ml_data_api to come up",
    )
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args(argv)
    if args.use_case is None and (args.training or args.testing):
        parser.error("--training and --testing need --use-case")
    return args


def main(argv: list[str]) -> int:
    """Load the data; exit code 0 on success, 1 with a reason otherwise."""
    configure_logging()
    args = parse_args(argv)
    settings = load_settings()
    client = MlDataClient(settings.ml_data_api_url, settings.api_token)
    try:
        client.wait_until_up(args.wait)
        if args.use_case is None:
            use_case, splits = PRODUCT_QUALITY, demo_splits(settings.demo_seed)
        else:
            use_case = UseCase.model_validate_json(args.use_case.read_text())
            paths = {Table.training: args.training, Table.testing: args.testing}
            splits = {t: read_csv(use_case, p) for t, p in paths.items() if p is not None}
        load(client, use_case, splits, batch_size=args.batch_size)
        log.info("row counts now: %s", client.counts(use_case.name))
    except GitsError as exc:
        log.error("loading failed: %s", exc.detail)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
