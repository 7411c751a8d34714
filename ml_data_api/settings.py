"""ml_data_api settings; the only module of the service that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.settings import (
    PostgresSettings,
    Role,
    config,
    postgres_settings,
    role_tokens,
)


@dataclass(frozen=True)
class Settings:
    """Everything ml_data_api needs to run."""

    postgres: PostgresSettings
    tokens: dict[Role, str]  # what each role's bearer token is
    host: str
    port: int
    pool_min: int
    pool_max: int
    max_batch_rows: int
    max_body_bytes: int
    default_use_case: str
    queue_manager_url: str  # asked which services use a use case before it is deleted


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        postgres=postgres_settings(),
        tokens=role_tokens(),
        host=config("ML_DATA_API_HOST", default="127.0.0.1"),
        port=config("ML_DATA_API_PORT", default=8004, cast=int),
        pool_min=config("ML_DATA_API_POOL_MIN", default=1, cast=int),
        pool_max=config("ML_DATA_API_POOL_MAX", default=8, cast=int),
        max_batch_rows=config("ML_DATA_API_MAX_BATCH_ROWS", default=50_000, cast=int),
        max_body_bytes=config("ML_DATA_API_MAX_BODY_BYTES", default=64 * 1024 * 1024, cast=int),
        default_use_case=config("ML_DATA_API_DEFAULT_USE_CASE", default="product_quality"),
        queue_manager_url=config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
    )
