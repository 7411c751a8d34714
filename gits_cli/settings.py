"""Where the `gits` command finds the platform; the only module of it that reads the
environment (then `.env` in the working directory, as every service does)."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.settings import Role, amqp_url, config, token

APIS = ("ml_data_api", "queue_manager", "monitoring_api", "retraining_api")
DEFAULT_URLS = {
    "ml_data_api": "http://127.0.0.1:8004",
    "queue_manager": "http://127.0.0.1:8001",
    "monitoring_api": "http://127.0.0.1:8005",
    "retraining_api": "http://127.0.0.1:8006",
}


@dataclass(frozen=True)
class Settings:
    """The APIs' base URLs ({api: url}) and the admin's address."""

    urls: dict[str, str]
    admin_url: str


def load_settings() -> Settings:
    """Settings from the environment and .env (ML_DATA_API_URL, QUEUE_MANAGER_URL,
    MONITORING_API_URL, RETRAINING_API_URL, DJANGO_ADMIN_HOST/PORT)."""
    host = config("DJANGO_ADMIN_HOST", default="127.0.0.1")
    port = config("DJANGO_ADMIN_PORT", default=8000, cast=int)
    return Settings(
        urls={api: config(f"{api.upper()}_URL", default=DEFAULT_URLS[api]) for api in APIS},
        admin_url=f"http://{host}:{port}",
    )


def bearer(role: Role) -> str:
    """The token of `role` (GITS_ADMIN_TOKEN, GITS_READ_TOKEN); `MissingSetting` names
    the setting when it is absent."""
    return token(role)


def broker_url() -> str:
    """RabbitMQ's address with credentials (RABBITMQ_*)."""
    return amqp_url()
