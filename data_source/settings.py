"""data_source settings; the only module of the publisher that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.settings import amqp_url, config
from gits_ml.demo import DemoConfig, demo_config


@dataclass(frozen=True)
class Settings:
    """Where to publish, how fast, and which demo data."""

    amqp_url: str
    routing_key: str
    rate: float
    count: int
    demo: DemoConfig


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        amqp_url=amqp_url(),
        routing_key=config("DATA_SOURCE_ROUTING_KEY", default="gits_product_quality_A"),
        rate=config("DATA_SOURCE_RATE", default=0.5, cast=float),
        count=config("DATA_SOURCE_COUNT", default=0, cast=int),
        demo=demo_config(),
    )
