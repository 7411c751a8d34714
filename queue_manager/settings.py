"""queue_manager settings; the only module of the service that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.settings import amqp_url, api_token, config


@dataclass(frozen=True)
class Settings:
    """Everything queue_manager needs to run."""

    api_token: str
    amqp_url: str
    host: str
    port: int
    mongodb_url: str  # empty: an in-memory mongomock store, lost at exit
    mongodb_db: str
    mongodb_connect_timeout: float
    max_model_bytes: int
    memory_max_jobs: int  # jobs an in-memory store keeps (mongomock scans on every write)


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        api_token=api_token(),
        amqp_url=amqp_url(),
        host=config("QUEUE_MANAGER_HOST", default="127.0.0.1"),
        port=config("QUEUE_MANAGER_PORT", default=8001, cast=int),
        mongodb_url=config("MONGODB_URL", default=""),
        mongodb_db=config("MONGODB_DB", default="gits"),
        mongodb_connect_timeout=config("MONGODB_CONNECT_TIMEOUT", default=3.0, cast=float),
        max_model_bytes=config(
            "QUEUE_MANAGER_MAX_MODEL_BYTES", default=512 * 1024 * 1024, cast=int
        ),
        memory_max_jobs=config("QUEUE_MANAGER_MEMORY_MAX_JOBS", default=2000, cast=int),
    )
