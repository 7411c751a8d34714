"""ml_data_loader settings; the only module of the job that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.settings import Role, config, token


@dataclass(frozen=True)
class Settings:
    """Where the APIs are, which demo data to load, and which service to bootstrap."""

    ml_data_api_url: str
    queue_manager_url: str
    api_token: str
    demo_seed: int
    bootstrap_service: str
    bootstrap_routing_key: str


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        queue_manager_url=config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
        api_token=token(Role.admin),  # the admin role's
        demo_seed=config("DEMO_SEED", default=7, cast=int),
        bootstrap_service=config("DEMO_SERVICE", default="service_product_quality_A"),
        bootstrap_routing_key=config("DEMO_ROUTING_KEY", default="gits_product_quality_A"),
    )
