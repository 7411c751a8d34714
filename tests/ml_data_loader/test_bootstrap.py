"""`make run` a second time, as its one-shot setup sees it: the demo service keeps the
model it has (no new version), and what a user registered is still there, after
queue_manager itself restarted on its embedded store."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.schemas import UseCase
from gits_ml.demo import PRODUCT_QUALITY, DemoConfig, generate
from ml_data_api.app import create_app as create_ml_data_api
from ml_data_api.settings import load_settings as ml_data_api_settings
from ml_data_loader.bootstrap import bootstrap_model
from queue_manager.app import create_app as create_queue_manager
from queue_manager.settings import load_settings as queue_manager_settings
from tests.amqp_helpers import delete_service_queues
from tests.conftest import LiveServer, private_store

DEMO = generate(DemoConfig(history_hours=300, production_minutes=10))


def test_a_second_start_keeps_the_demo_model_and_the_users_models(
    postgres_dsn, rabbitmq_url, api_token
):
    name = f"boot_{uuid.uuid4().hex[:8]}"
    use_case = PRODUCT_QUALITY.model_copy(update={"name": name})
    service = f"{name}_service"

    async def start_once(queue_manager_url: str) -> tuple[int, int]:
        """The setup's bootstrap; (the service's version, the newest version stored)."""
        qm = QueueManagerClient(queue_manager_url, api_token)
        try:
            bound = await bootstrap_model(
                qm, use_case, DEMO.training, service=service, routing_key=f"gits.{name}"
            )
            latest = await qm.algorithm(f"{name}_baseline", "latest")
            return int(bound.resolved_version or 0), latest.version
        finally:
            await qm.close()

    with LiveServer(create_ml_data_api(ml_data_api_settings())) as ml_data:
        asyncio.run(register(MlDataClient(ml_data.url, api_token), use_case))
        settings = dataclasses.replace(
            private_store(queue_manager_settings()), ml_data_api_url=ml_data.url
        )
        try:
            # Given a first start, which trains and binds the demo's model
            with LiveServer(create_queue_manager(settings)) as qm:
                first = asyncio.run(start_once(qm.url))
            # When queue_manager and the setup start again on the same store
            with LiveServer(create_queue_manager(settings)) as qm:
                second = asyncio.run(start_once(qm.url))
        finally:
            delete_service_queues(rabbitmq_url, service)

    # Then the service keeps version 1, and no second version was made
    assert first == (1, 1)
    assert second == (1, 1)


async def register(ml_data: MlDataClient, use_case: UseCase) -> None:
    try:
        await ml_data.register_use_case(use_case)
    finally:
        await ml_data.close()
