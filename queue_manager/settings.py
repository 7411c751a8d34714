"""queue_manager settings; the only module of the service that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from decouple import Csv

from gits_common.settings import (
    PostgresSettings,
    Role,
    amqp_url,
    config,
    postgres_settings,
    role_tokens,
)
from queue_manager.sandbox import WARM_MODULES


@dataclass(frozen=True)
class Settings:
    """Everything queue_manager needs to run."""

    tokens: dict[Role, str]  # what each role's bearer token is
    amqp_url: str
    host: str
    port: int
    # Where algorithms, services and jobs are kept: MongoDB at this URL (compose), or,
    # when it is empty, `postgres_schema` in PostgreSQL (the embedded default).
    # "mongomock://" is an in-memory test double, never a user's store.
    mongodb_url: str
    mongodb_db: str
    mongodb_connect_timeout: float
    postgres: PostgresSettings | None  # None when MongoDB is the store
    postgres_schema: str
    max_model_bytes: int
    ml_data_api_url: str  # where uploads find their use case and rows to predict
    validation_seconds: float  # wall-clock and CPU limit of one upload check
    validation_memory_bytes: int  # memory one upload check may add to the sandbox's own
    sandbox_preload: tuple[str, ...]  # modules the sandbox imports once (none: start lazily)


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        tokens=role_tokens(),
        amqp_url=amqp_url(),
        host=config("QUEUE_MANAGER_HOST", default="127.0.0.1"),
        port=config("QUEUE_MANAGER_PORT", default=8001, cast=int),
        mongodb_url=(mongodb_url := config("MONGODB_URL", default="")),
        mongodb_db=config("MONGODB_DB", default="gits"),
        mongodb_connect_timeout=config("MONGODB_CONNECT_TIMEOUT", default=3.0, cast=float),
        postgres=None if mongodb_url else postgres_settings(),
        postgres_schema=config("QUEUE_MANAGER_SCHEMA", default="queue_manager"),
        max_model_bytes=config(
            "QUEUE_MANAGER_MAX_MODEL_BYTES", default=512 * 1024 * 1024, cast=int
        ),
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        validation_seconds=config("QUEUE_MANAGER_VALIDATION_SECONDS", default=60.0, cast=float),
        validation_memory_bytes=config("QUEUE_MANAGER_VALIDATION_MEMORY_MB", default=2048, cast=int)
        * 2**20,
        sandbox_preload=tuple(
            config(
                "QUEUE_MANAGER_SANDBOX_PRELOAD",
                default=",".join(WARM_MODULES),
                cast=Csv(post_process=tuple),
            )
        ),
    )
