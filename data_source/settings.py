"""data_source settings; the only module of the publisher that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gits_common.settings import Role, amqp_url, config, port_setting, token
from gits_ml.demo import DemoConfig, demo_config


@dataclass(frozen=True)
class Settings:
    """Where to publish, how fast, and which demo data."""

    amqp_url: str
    routing_key: str
    rate: float
    count: int
    demo: DemoConfig
    use_case: str
    csv: Path | None
    ml_data_api_url: str
    metrics_host: str = "127.0.0.1"  # where the metrics server listens
    metrics_port: int = 0  # 0: no metrics server


# The metrics port of product_quality's publisher; `make run` gives each demo's its own.
METRICS_PORT = 8010


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        amqp_url=amqp_url(),
        routing_key=config("DATA_SOURCE_ROUTING_KEY", default="gits_product_quality_A"),
        rate=config("DATA_SOURCE_RATE", default=0.5, cast=float),
        count=config("DATA_SOURCE_COUNT", default=0, cast=int),
        demo=demo_config(),
        use_case=config("DATA_SOURCE_USE_CASE", default="product_quality"),
        csv=Path(csv) if (csv := config("DATA_SOURCE_CSV", default="")) else None,
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        metrics_host=config("METRICS_HOST", default="127.0.0.1"),
        metrics_port=port_setting("DATA_SOURCE_METRICS_PORT", default=METRICS_PORT),
    )


def api_token() -> str:
    """The runtime role's token, read only when a CSV's use case is asked of ml_data_api:
    the demo's stream needs no token (compose gives data_source none)."""
    return token(Role.runtime)
