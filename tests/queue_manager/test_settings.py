"""queue_manager runs where the original did unless told otherwise, from the environment."""

from __future__ import annotations

import os

from decouple import Config, RepositoryEmpty

from gits_common.settings import Role
from queue_manager.settings import load_settings

VARIABLES = [
    "QUEUE_MANAGER_HOST",
    "QUEUE_MANAGER_PORT",
    "MONGODB_URL",
    "QUEUE_MANAGER_SCHEMA",
    "MONGODB_DB",
    "MONGODB_CONNECT_TIMEOUT",
    "QUEUE_MANAGER_MAX_MODEL_BYTES",
]


def test_defaults_are_the_original_port_and_the_postgresql_store(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # Nor from .env: only the secrets, read by gits_common, still come from there.
    monkeypatch.setattr("queue_manager.settings.config", Config(RepositoryEmpty()))
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8001)
    assert settings.mongodb_db == "gits"
    assert (settings.mongodb_url, settings.postgres_schema) == ("", "queue_manager")
    assert settings.postgres is not None
    assert settings.max_model_bytes == 512 * 1024 * 1024
    assert settings.tokens[Role.admin] == os.environ["GITS_ADMIN_TOKEN"]


def test_the_environment_sets_the_store_and_limits(monkeypatch):
    monkeypatch.setenv("QUEUE_MANAGER_PORT", "9101")
    monkeypatch.setenv("MONGODB_URL", "mongodb://mongo.example:27017")
    monkeypatch.setenv("MONGODB_DB", "plant_7")
    monkeypatch.setenv("QUEUE_MANAGER_MAX_MODEL_BYTES", "1000")
    monkeypatch.setenv("RABBITMQ_HOST", "broker.example")

    settings = load_settings()

    assert settings.port == 9101
    assert settings.mongodb_url == "mongodb://mongo.example:27017"
    assert settings.mongodb_db == "plant_7"
    assert settings.max_model_bytes == 1000
    assert "@broker.example:" in settings.amqp_url
