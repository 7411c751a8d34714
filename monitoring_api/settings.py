"""monitoring_api settings; the only module of the service that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.settings import (
    PostgresSettings,
    Role,
    config,
    postgres_settings,
    role_tokens,
)
from monitoring_api.webhooks import AllowedHost, parse_allowed_hosts


@dataclass(frozen=True)
class Settings:
    """Everything monitoring_api needs to run."""

    postgres: PostgresSettings
    tokens: dict[Role, str]  # what each role's bearer token is
    host: str
    port: int
    ml_data_api_url: str
    queue_manager_url: str
    pool_min: int
    pool_max: int
    min_rows: int  # fewer current rows than this answer 422: drift on a handful is noise
    min_window_rows: int  # a history point needs more: its alerts must not be noise
    reference_rows: int  # the newest rows of the reference table a report compares with
    max_rows: int  # most rows one window may hold (ml_data_api's read limit)
    report_cache_size: int
    interval_seconds: float  # between metric-history points; 0 turns the loop off
    window_rows: int  # newest production rows one history point looks at
    min_labelled: int  # labelled rows a history point needs to record performance
    alert_cooldown_seconds: float
    webhook_timeout_seconds: float
    # Webhook hosts (host or host:port) that may be private: the operator's own receivers
    webhook_allowed_hosts: tuple[AllowedHost, ...]
    default_drift_share: float | None  # thresholds of a use case that set none; None: off
    default_feature_drift_score: float | None
    default_anomaly_rate: float | None


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        postgres=postgres_settings(),
        tokens=role_tokens(),
        host=config("MONITORING_API_HOST", default="127.0.0.1"),
        port=config("MONITORING_API_PORT", default=8005, cast=int),
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        queue_manager_url=config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
        pool_min=config("MONITORING_API_POOL_MIN", default=1, cast=int),
        pool_max=config("MONITORING_API_POOL_MAX", default=4, cast=int),
        min_rows=config("MONITORING_MIN_ROWS", default=30, cast=int),
        min_window_rows=config("MONITORING_MIN_WINDOW_ROWS", default=500, cast=int),
        reference_rows=config("MONITORING_REFERENCE_ROWS", default=10_000, cast=int),
        max_rows=config("MONITORING_MAX_ROWS", default=100_000, cast=int),
        report_cache_size=config("MONITORING_REPORT_CACHE_SIZE", default=32, cast=int),
        interval_seconds=config("MONITORING_INTERVAL_SECONDS", default=60.0, cast=float),
        window_rows=config("MONITORING_WINDOW_ROWS", default=500, cast=int),
        min_labelled=config("MONITORING_MIN_LABELLED", default=10, cast=int),
        alert_cooldown_seconds=config(
            "MONITORING_ALERT_COOLDOWN_SECONDS", default=3600.0, cast=float
        ),
        webhook_timeout_seconds=config(
            "MONITORING_WEBHOOK_TIMEOUT_SECONDS", default=5.0, cast=float
        ),
        webhook_allowed_hosts=parse_allowed_hosts(
            config("MONITORING_WEBHOOK_ALLOWED_HOSTS", default="")
        ),
        default_drift_share=_optional_float("MONITORING_DEFAULT_DRIFT_SHARE", "0.5"),
        default_feature_drift_score=_optional_float(
            "MONITORING_DEFAULT_FEATURE_DRIFT_SCORE", "0.3"
        ),
        # Above the 5% of normal rows PyCaret's anomaly models flag by default (fraction).
        default_anomaly_rate=_optional_float("MONITORING_DEFAULT_ANOMALY_RATE", "0.1"),
    )


def _optional_float(name: str, default: str) -> float | None:
    """A number, or None where the setting is empty (the check is off)."""
    value: str = config(name, default=default)
    return float(value) if value.strip() else None
