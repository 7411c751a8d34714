"""Helpers for each service's settings module, the only readers of the environment.

Values come from the process environment first, then from the `.env` file in the
working directory (or the folder named by GITS_ENV_DIR), through python-decouple.
"""

from __future__ import annotations

import logging
import logging.config
import os
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import quote

from decouple import AutoConfig

from gits_common.logs import LogFormat, capture_stray_output, handler

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


MAX_PORT = 65535  # TCP's ports are 16 bits


def port_setting(name: str, *, default: int) -> int:
    """A TCP port setting, 0 (nothing served) to 65535; anything else stops the process
    with a message naming it (a socket would raise OverflowError deep in a thread)."""
    raw = str(config(name, default=str(default))).strip()
    if not raw.isdigit() or int(raw) > MAX_PORT:
        raise MissingSetting(f"{name} is {raw!r}; it must be a port from 0 (off) to {MAX_PORT}")
    return int(raw)


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


def log_format() -> LogFormat:
    """LOG_FORMAT: `plain` (the default: a line of text a record) or `json` (one JSON
    object a line, for a log collector); anything else stops the process naming it."""
    value = config("LOG_FORMAT", default="plain").strip().lower()
    try:
        return LogFormat(value)
    except ValueError:
        choices = " or ".join(f.value for f in LogFormat)
        raise MissingSetting(f"LOG_FORMAT is {value!r}; it must be {choices}") from None


def logging_config(service: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of a process named `service`: stderr at LOG_LEVEL
    in LOG_FORMAT (Django takes it as its LOGGING)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "stderr": {"()": handler, "log_format": log_format(), "service": service},
        },
        "root": {"handlers": ["stderr"], "level": config("LOG_LEVEL", default="INFO").upper()},
        # One line per HTTP call between services drowns what matters.
        "loggers": {"httpx": {"level": "WARNING"}},
    }


def configure_logging(service: str) -> None:
    """Log to stderr at LOG_LEVEL in LOG_FORMAT, each record naming `service` (and, in
    JSON, the `gits_common.logs.log_context` fields it was logged with). Loggers that
    libraries configure nothing for, such as uvicorn's with `log_config=None`, go the
    same way. Like `logging.basicConfig`, it leaves a root logger that already has
    handlers as it is: whoever set them (a test's log capture) keeps them."""
    chosen = log_format()  # a wrong LOG_FORMAT is refused whoever configured logging
    if logging.getLogger().handlers:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        return
    logging.config.dictConfig(logging_config(service))
    if chosen is LogFormat.json:
        capture_stray_output()


def amqp_url() -> str:
    """The RabbitMQ address, with credentials, from RABBITMQ_* variables."""
    user = quote(config("RABBITMQ_USER", default="gits"), safe="")
    password = quote(secret("RABBITMQ_PASSWORD"), safe="")
    host = config("RABBITMQ_HOST", default="127.0.0.1")
    port = config("RABBITMQ_PORT", default=5672, cast=int)
    vhost = quote(config("RABBITMQ_VHOST", default="/"), safe="")
    return f"amqp://{user}:{password}@{host}:{port}/{vhost}"
