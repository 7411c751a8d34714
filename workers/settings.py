"""Worker settings; the only module of the worker that reads the environment."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from gits_common.settings import amqp_url, api_token, config


@dataclass(frozen=True)
class Settings:
    """Everything one worker replica needs."""

    service_name: str
    worker_id: str
    amqp_url: str
    queue_manager_url: str
    ml_data_api_url: str
    api_token: str
    batch_size: int
    prefetch: int
    retry_attempts: int
    retry_base_delay: float
    binding_refresh_seconds: float


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    batch_size = config("WORKER_BATCH_SIZE", default=100, cast=int)
    return Settings(
        service_name=config("SERVICE_NAME", default="service_product_quality_A"),
        worker_id=f"{socket.gethostname()}-{os.getpid()}",
        amqp_url=amqp_url(),
        queue_manager_url=config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        api_token=api_token(),
        batch_size=batch_size,
        prefetch=config("WORKER_PREFETCH", default=2 * batch_size, cast=int),
        retry_attempts=config("WORKER_RETRY_ATTEMPTS", default=10, cast=int),
        retry_base_delay=config("WORKER_RETRY_BASE_DELAY", default=0.5, cast=float),
        binding_refresh_seconds=config("WORKER_BINDING_REFRESH_SECONDS", default=30.0, cast=float),
    )
