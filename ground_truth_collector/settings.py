"""ground_truth_collector settings; the only module of the collector that reads the
environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gits_common.settings import (
    MissingSetting,
    Role,
    config,
    port_setting,
    postgres_settings,
    token,
)
from gits_ml.demo import DemoConfig, demo_config


@dataclass(frozen=True)
class Settings:
    """Where to send labels, how often, and where to remember how far it got."""

    ml_data_api_url: str
    api_token: str
    use_case: str
    interval_seconds: float
    delay_seconds: float
    overlap_seconds: float
    batch_size: int
    state_dir: Path
    demo: DemoConfig
    demo_name: str | None  # the demo whose labels source "demo" sends; None: the use case's
    source: str  # one of SOURCES
    csv_path: Path | None  # the CSV of source "csv"
    table: str | None  # the table or view of source "table"
    dsn: str | None  # the database of source "table"
    metrics_host: str = "127.0.0.1"  # where the metrics server listens
    metrics_port: int = 0  # 0: no metrics server


SOURCES = ("demo", "csv", "table")
# The metrics port of product_quality's collector; `make run` gives each demo's its own.
METRICS_PORT = 8020


def load_settings() -> Settings:
    """Settings from the environment and .env. Raises `MissingSetting` for an unknown
    GROUND_TRUTH_SOURCE, or when the file or table its source reads is not named."""
    source = config("GROUND_TRUTH_SOURCE", default="demo").strip().lower()
    if source not in SOURCES:
        raise MissingSetting(
            f"GROUND_TRUTH_SOURCE is {source!r}; it must be one of {', '.join(SOURCES)}"
        )
    csv_path = config("GROUND_TRUTH_CSV", default="").strip()
    table = config("GROUND_TRUTH_TABLE", default="").strip()
    needed = {"csv": ("GROUND_TRUTH_CSV", csv_path), "table": ("GROUND_TRUTH_TABLE", table)}
    if source in needed and not needed[source][1]:
        name = needed[source][0]
        raise MissingSetting(f"GROUND_TRUTH_SOURCE={source} reads its labels from {name}: set it")
    dsn = config("GROUND_TRUTH_DSN", default="").strip() or None
    if source == "table" and dsn is None:
        dsn = postgres_settings().dsn("ground_truth_collector")  # the platform's own
    return Settings(
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        api_token=token(Role.runtime),  # the runtime role's
        use_case=config("GROUND_TRUTH_USE_CASE", default="product_quality"),
        interval_seconds=config("GROUND_TRUTH_INTERVAL_SECONDS", default=10.0, cast=float),
        delay_seconds=config("GROUND_TRUTH_DELAY_SECONDS", default=60.0, cast=float),
        overlap_seconds=config("GROUND_TRUTH_OVERLAP_SECONDS", default=600.0, cast=float),
        batch_size=config("GROUND_TRUTH_BATCH_SIZE", default=1000, cast=int),
        state_dir=Path(config("GROUND_TRUTH_STATE_DIR", default="var/ground_truth_collector")),
        demo=demo_config(),
        demo_name=config("GROUND_TRUTH_DEMO", default="").strip() or None,
        source=source,
        csv_path=Path(csv_path) if csv_path else None,
        table=table or None,
        dsn=dsn,
        metrics_host=config("METRICS_HOST", default="127.0.0.1"),
        metrics_port=port_setting("GROUND_TRUTH_METRICS_PORT", default=METRICS_PORT),
    )
