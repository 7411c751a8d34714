"""ml_data_loader settings; the only module of the job that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from decouple import Csv

from gits_common.settings import Role, config, token
from gits_ml.demos import DEMOS


@dataclass(frozen=True)
class Settings:
    """Where the APIs are, which demo use cases to load (DEMO_USE_CASES, a comma-separated
    list of `gits_ml.demos.DEMOS`; all three by default), and the product_quality
    demo's service and routing key (DEMO_SERVICE, DEMO_ROUTING_KEY; the others use
    their own, from DEMOS)."""

    ml_data_api_url: str
    queue_manager_url: str
    api_token: str
    demo_seed: int
    demo_use_cases: list[str]
    bootstrap_service: str
    bootstrap_routing_key: str


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        queue_manager_url=config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
        api_token=token(Role.admin),  # the admin role's
        demo_seed=config("DEMO_SEED", default=7, cast=int),
        demo_use_cases=config(
            "DEMO_USE_CASES", default=",".join(DEMOS), cast=Csv(post_process=list)
        ),
        bootstrap_service=config("DEMO_SERVICE", default="service_product_quality_A"),
        bootstrap_routing_key=config("DEMO_ROUTING_KEY", default="gits_product_quality_A"),
    )
