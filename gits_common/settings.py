"""Helpers for each service's settings module, the only readers of the environment.

Values come from the process environment first, then from the `.env` file in the
working directory (or the folder named by GITS_ENV_DIR), through python-decouple.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from decouple import AutoConfig

if TYPE_CHECKING:
    from gits_common.demo import DemoConfig

config = AutoConfig(search_path=os.environ.get("GITS_ENV_DIR") or os.getcwd())


class MissingSetting(RuntimeError):
    """A required setting (usually a secret) is not configured."""


def required(name: str) -> str:
    """A setting with no default: its absence stops the service with a clear message."""
    value: str = config(name, default="")
    if not value.strip():
        raise MissingSetting(
            f"{name} is not set. Run `make env` to generate local secrets into .env, "
            f"or set {name} in the environment (see .env.example)."
        )
    return value


@dataclass(frozen=True)
class PostgresSettings:
    """Where PostgreSQL/TimescaleDB is and how to log in."""

    host: str
    port: int
    user: str
    password: str
    database: str
    connect_timeout: int

    def dsn(self, application_name: str) -> str:
        """A libpq connection string naming the connecting service."""
        return (
            f"postgresql://{quote(self.user)}:{quote(self.password)}@{self.host}:{self.port}/"
            f"{quote(self.database)}?connect_timeout={self.connect_timeout}"
            f"&application_name={quote(application_name)}"
        )


def postgres_settings() -> PostgresSettings:
    """PostgreSQL settings from POSTGRES_* variables."""
    return PostgresSettings(
        host=config("POSTGRES_HOST", default="127.0.0.1"),
        port=config("POSTGRES_PORT", default=5432, cast=int),
        user=config("POSTGRES_USER", default="gits"),
        password=required("POSTGRES_PASSWORD"),
        database=config("POSTGRES_DB", default="gits"),
        connect_timeout=config("POSTGRES_CONNECT_TIMEOUT", default=3, cast=int),
    )


def api_token() -> str:
    """The bearer token every GITS API asks for and every client sends."""
    return required("GITS_API_TOKEN")


def configure_logging() -> None:
    """Log to stderr at LOG_LEVEL, one line a record with the logger's name."""
    logging.basicConfig(
        level=config("LOG_LEVEL", default="INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP call between services drowns what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def amqp_url() -> str:
    """The RabbitMQ address, with credentials, from RABBITMQ_* variables."""
    user = quote(config("RABBITMQ_USER", default="gits"), safe="")
    password = quote(required("RABBITMQ_PASSWORD"), safe="")
    host = config("RABBITMQ_HOST", default="127.0.0.1")
    port = config("RABBITMQ_PORT", default=5672, cast=int)
    vhost = quote(config("RABBITMQ_VHOST", default="/"), safe="")
    return f"amqp://{user}:{password}@{host}:{port}/{vhost}"


def demo_config() -> DemoConfig:
    """The demo generator's knobs from DEMO_* variables. data_source and the ground truth
    collector must agree on them: they determine the demo's message ids."""
    from gits_common.demo import DemoConfig  # numpy and pandas only for the demo's users

    drift_after = config("DEMO_DRIFT_AFTER_MINUTE", default="")
    return DemoConfig(
        seed=config("DEMO_SEED", default=7, cast=int),
        drift_after_minute=int(drift_after) if drift_after.strip() else None,
        drift_shift=config("DEMO_DRIFT_SHIFT", default=40.0, cast=float),
        ground_truth_every_minutes=config("DEMO_GROUND_TRUTH_EVERY", default=60, cast=int),
    )
