"""retraining_api settings; the only module of the service that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from decouple import Csv

from gits_common.settings import (
    PostgresSettings,
    Role,
    config,
    postgres_settings,
    role_tokens,
)

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Settings:
    """Everything retraining_api needs to run (picklable: job processes receive it)."""

    postgres: PostgresSettings
    tokens: dict[Role, str]  # what each role's bearer token is
    host: str
    port: int
    ml_data_api_url: str
    queue_manager_url: str
    monitoring_api_url: str
    artifacts_dir: Path  # challengers and explainer pages, named by job and cache key
    default_models: tuple[str, ...]  # PyCaret model ids a job compares when it names none
    fold: int
    n_jobs: int  # processes cross-validating in a job (-1: one per core)
    min_training_rows: int  # fewer answer 422: a model on a handful of rows is noise
    min_holdout_rows: int
    holdout_fraction: float  # of the labelled production rows, newest first, kept out
    max_rows: int  # most rows one job reads from a table
    promote_margin: float  # relative improvement auto-promotion demands
    explainer_rows: int  # rows an explainer samples when the request names no number
    on_drift: bool  # start a retraining job when monitoring raises a drift alert
    on_drift_auto_promote: bool
    drift_poll_seconds: float


def load_settings() -> Settings:
    """Settings from the environment and .env."""
    return Settings(
        postgres=postgres_settings(),
        tokens=role_tokens(),
        host=config("RETRAINING_API_HOST", default="127.0.0.1"),
        port=config("RETRAINING_API_PORT", default=8006, cast=int),
        ml_data_api_url=config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
        queue_manager_url=config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
        monitoring_api_url=config("MONITORING_API_URL", default="http://127.0.0.1:8005"),
        artifacts_dir=Path(config("RETRAINING_ARTIFACTS_DIR", default="var/retraining")),
        default_models=tuple(
            config(
                "RETRAINING_DEFAULT_MODELS",
                default="lr,ridge,lightgbm,rf,et,catboost",
                cast=Csv(),
            )
        ),
        fold=_within("RETRAINING_FOLD", config("RETRAINING_FOLD", default=3, cast=int), 2, 20),
        # Measured on 2 cores: the demo's six models compared in 56 s with -1, 27 s with 1.
        n_jobs=config("RETRAINING_N_JOBS", default=1, cast=int),
        min_training_rows=config("RETRAINING_MIN_TRAINING_ROWS", default=100, cast=int),
        min_holdout_rows=config("RETRAINING_MIN_HOLDOUT_ROWS", default=20, cast=int),
        holdout_fraction=config("RETRAINING_HOLDOUT_FRACTION", default=0.2, cast=float),
        max_rows=config("RETRAINING_MAX_ROWS", default=100_000, cast=int),
        # Relative, as the request's promote_margin (0 to 1): 0.01 asks 1% better.
        promote_margin=_within(
            "RETRAINING_PROMOTE_MARGIN",
            config("RETRAINING_PROMOTE_MARGIN", default=0.01, cast=float),
            0.0,
            1.0,
        ),
        explainer_rows=config("RETRAINING_EXPLAINER_ROWS", default=1000, cast=int),
        on_drift=config("RETRAINING_ON_DRIFT", default=False, cast=bool),
        on_drift_auto_promote=config("RETRAINING_ON_DRIFT_AUTO_PROMOTE", default=False, cast=bool),
        drift_poll_seconds=config("RETRAINING_DRIFT_POLL_SECONDS", default=60.0, cast=float),
    )


def _within(name: str, value: Number, low: Number, high: Number) -> Number:
    """The setting's value, or ValueError naming it when outside [low, high] (or NaN)."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value
