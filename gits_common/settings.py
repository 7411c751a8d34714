"""Helpers for each service's settings module, the only readers of the environment.

Values come from the process environment first, then from the `.env` file in the
working directory (or the folder named by GITS_ENV_DIR), through python-decouple.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import quote

from decouple import AutoConfig

config = AutoConfig(search_path=os.environ.get("GITS_ENV_DIR") or os.getcwd())


class MissingSetting(RuntimeError):
    """A required setting (usually a secret) is not configured."""


# A secret shorter than this is refused at start: 32 characters of hex are 128 bits, what
# a guess must beat (`make env` generates 48).
MIN_SECRET_CHARS = 32


def required(name: str, *, min_length: int = 1) -> str:
    """A setting with no default: its absence (or a value shorter than `min_length`)
    stops the service with a message naming it."""
    value: str = config(name, default="")
    if not value.strip():
        raise MissingSetting(
            f"{name} is not set. Run `make env` to generate local secrets into .env, "
            f"or set {name} in the environment (see .env.example)."
        )
    if len(value) < min_length:
        raise MissingSetting(
            f"{name} has {len(value)} characters; a secret needs at least {min_length}. "
            "`make env` generates one when the setting is empty in .env."
        )
    return value


def secret(name: str) -> str:
    """A secret setting: required, and at least MIN_SECRET_CHARS long."""
    return required(name, min_length=MIN_SECRET_CHARS)


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
        password=secret("POSTGRES_PASSWORD"),
        database=config("POSTGRES_DB", default="gits"),
        connect_timeout=config("POSTGRES_CONNECT_TIMEOUT", default=3, cast=int),
    )


class Role(IntEnum):
    """What a bearer token may do; a higher role may do all a lower one may.

    - read: GET what the APIs hold (dashboards, reports);
    - runtime: also record jobs, rows and labels, and read model files and bindings
      (workers, data_source, the ground truth collector);
    - admin: also register use cases, models and services, bind and promote, set
      thresholds, start retraining (operators and the demo's setup).
    """

    read = 1
    runtime = 2
    admin = 3


TOKEN_SETTINGS = {
    Role.admin: "GITS_ADMIN_TOKEN",
    Role.runtime: "GITS_RUNTIME_TOKEN",
    Role.read: "GITS_READ_TOKEN",
}


def token(role: Role) -> str:
    """The bearer token of `role`, which a client process sends."""
    return secret(TOKEN_SETTINGS[role])


def role_tokens() -> dict[Role, str]:
    """Every role's token, which an API checks requests against; the three must differ."""
    found = {role: token(role) for role in Role}
    if len(set(found.values())) < len(found):
        raise MissingSetting(
            f"{', '.join(TOKEN_SETTINGS.values())} must be three different secrets"
        )
    return found


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
    password = quote(secret("RABBITMQ_PASSWORD"), safe="")
    host = config("RABBITMQ_HOST", default="127.0.0.1")
    port = config("RABBITMQ_PORT", default=5672, cast=int)
    vhost = quote(config("RABBITMQ_VHOST", default="/"), safe="")
    return f"amqp://{user}:{password}@{host}:{port}/{vhost}"
