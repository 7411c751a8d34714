"""Worker settings; the only module of the worker that reads the environment."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from gits_common.settings import Role, amqp_url, config, port_setting, token


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
    batches_in_flight: int
    prefetch: int
    retry_attempts: int
    retry_base_delay: float
    max_message_bytes: int
    journal_max_records: int
    predict_seconds: float
    binding_refresh_seconds: float
    metrics_host: str = "127.0.0.1"  # where the metrics server listens
    metrics_port: int = 0  # 0: no metrics server


# The metrics port of a replica started by hand; `make run` gives each replica its own.
METRICS_PORT = 8100


# Defaults, shared with the bare-ceiling benchmark (which consumes as the workers do).
BATCH_SIZE = 500
BATCHES_IN_FLIGHT = 3


def batching() -> tuple[int, int, int]:
    """(batch size, batches in flight, prefetch) from WORKER_BATCH_SIZE,
    WORKER_BATCHES_IN_FLIGHT and WORKER_PREFETCH; the prefetch defaults to a batch for
    each in flight and one waiting."""
    batch_size = config("WORKER_BATCH_SIZE", default=BATCH_SIZE, cast=int)
    in_flight = config("WORKER_BATCHES_IN_FLIGHT", default=BATCHES_IN_FLIGHT, cast=int)
    prefetch = config("WORKER_PREFETCH", default=(in_flight + 1) * batch_size, cast=int)
    if min(batch_size, in_flight, prefetch) < 1:
        raise SystemExit(
            "WORKER_BATCH_SIZE, WORKER_BATCHES_IN_FLIGHT and WORKER_PREFETCH must be 1 or more"
        )
    return batch_size, in_flight, prefetch


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    batch_size, batches_in_flight, prefetch = batching()
    return Settings(
        service_name=config("SERVICE_NAME", default="service_product_quality_A"),
        worker_id=f"{socket.gethostname()}-{os.getpid()}",
        amqp_url=amqp_url(),
        queue_manager_url=config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        api_token=token(Role.runtime),  # the runtime role's
        batch_size=batch_size,
        batches_in_flight=batches_in_flight,
        prefetch=prefetch,
        retry_attempts=config("WORKER_RETRY_ATTEMPTS", default=10, cast=int),
        retry_base_delay=config("WORKER_RETRY_BASE_DELAY", default=0.5, cast=float),
        max_message_bytes=config("WORKER_MAX_MESSAGE_BYTES", default=4 * 2**20, cast=int),
        journal_max_records=config("WORKER_JOURNAL_MAX_RECORDS", default=100_000, cast=int),
        predict_seconds=config("WORKER_PREDICT_SECONDS", default=30.0, cast=float),
        binding_refresh_seconds=config("WORKER_BINDING_REFRESH_SECONDS", default=30.0, cast=float),
        metrics_host=config("METRICS_HOST", default="127.0.0.1"),
        metrics_port=port_setting("WORKER_METRICS_PORT", default=METRICS_PORT),
    )
