"""ground_truth_collector settings; the only module of the collector that reads the
environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gits_common.settings import Role, config, token
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


def load_settings() -> Settings:
    """Settings from the environment and .env."""
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
    )
