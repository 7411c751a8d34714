"""ml_data_loader settings; the only module of the job that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.settings import api_token, config


@dataclass(frozen=True)
class Settings:
    """Where ml_data_api is, and which demo data to load."""

    ml_data_api_url: str
    api_token: str
    demo_seed: int


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        api_token=api_token(),
        demo_seed=config("DEMO_SEED", default=7, cast=int),
    )
