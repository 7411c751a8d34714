"""A use case can be deleted, tables and all, once no service in queue_manager uses it;
while one does, or while queue_manager cannot say, nothing is deleted."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gits_common import errors
from gits_common.clients import MlDataClient
from gits_common.schemas import Column, Table, UseCase
from ml_data_api.app import create_app
from ml_data_api.settings import Settings
from queue_manager.app import create_app as create_queue_manager
from queue_manager.sandbox import Sandbox
from queue_manager.settings import load_settings as queue_manager_settings
from tests.conftest import LiveServer, free_port, private_store
from tests.ml_data_api.conftest import sensor_rows, sensor_use_case


@pytest.fixture(scope="module")
def queue_manager(postgres_dsn: str) -> Iterator[FastAPI]:
    """A real queue_manager on a store of its own, served on a free port (its URL in
    `app.state.url`). Models are never uploaded here, so its sandbox never starts."""
    sandbox = Sandbox(time_limit=30, memory_bytes=2**30, preload=())
    app = create_queue_manager(private_store(queue_manager_settings()), sandbox=sandbox)
    with LiveServer(app) as server:
        app.state.url = server.url
        yield app
    sandbox.close()


@pytest.fixture
def settings(settings: Settings, queue_manager: FastAPI) -> Settings:
    """ml_data_api settings that ask the test queue_manager."""
    return dataclasses.replace(settings, queue_manager_url=queue_manager.state.url)


def bind_service(queue_manager: FastAPI, name: str, use_case: str) -> None:
    """Store a service of `use_case` as queue_manager keeps it (its model need not exist
    for queue_manager to list it)."""
    queue_manager.state.queue_manager.db.run(
        lambda session: session.save_service(
            name=name,
            routing_key=f"{name}.data",
            use_case=use_case,
            algorithm_name=f"{use_case}_model",
            algorithm_version=None,
            updated_by="tests",
            now=datetime.now(UTC),
        )
    )


def unbind_service(queue_manager: FastAPI, name: str) -> None:
    queue_manager.state.queue_manager.db.run(lambda session: session.delete_service(name=name))


def register(client: TestClient, use_case: UseCase, rows: int = 5) -> None:
    response = client.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json"))
    assert response.status_code == 201, response.text
    response = client.post(
        f"/ml_data_api/use_cases/{use_case.name}/training/rows", json={"rows": sensor_rows(rows)}
    )
    assert response.status_code == 201, response.text


def tables_of(pg, name: str) -> list[str]:
    with pg.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name = ANY(%s) "
            "ORDER BY table_name",
            ([f"{name}_{t.value}" for t in Table],),
        )
        return [row[0] for row in cur.fetchall()]


def test_a_deleted_use_case_is_gone_with_its_tables_and_its_name_is_free_again(client, pg):
    # Given two use cases with rows
    doomed, kept = sensor_use_case(), sensor_use_case()
    register(client, doomed)
    register(client, kept, rows=7)

    # When one is deleted
    response = client.delete(f"/ml_data_api/use_cases/{doomed.name}")

    # Then it and its three tables are gone, and the other is as it was
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": doomed.name,
        "tables": [f"{doomed.name}_{t.value}" for t in Table],
    }
    assert client.get(f"/ml_data_api/use_cases/{doomed.name}").status_code == 404
    assert client.get(f"/ml_data_api/use_cases/{doomed.name}/counts").status_code == 404
    assert tables_of(pg, doomed.name) == []
    assert client.get(f"/ml_data_api/use_cases/{kept.name}/counts").json() == {
        "training": 7,
        "testing": 0,
        "production": 0,
    }
    # And the name can be registered again, even with another definition, from empty
    again = doomed.model_copy(update={"features": [Column(name="pressure")]})
    response = client.post("/ml_data_api/use_cases", json=again.model_dump(mode="json"))
    assert response.status_code == 201, response.text
    assert response.json()["use_case"]["features"] == [{"name": "pressure", "type": "float"}]
    counts = client.get(f"/ml_data_api/use_cases/{doomed.name}/counts").json()
    assert counts == {"training": 0, "testing": 0, "production": 0}
    row = {"ts": "2025-03-01T00:00:00+00:00", "pressure": 1.5, "quality": 2.0}
    response = client.post(
        f"/ml_data_api/use_cases/{doomed.name}/training/rows", json={"rows": [row]}
    )
    assert response.status_code == 201, response.text


def test_a_use_case_a_service_uses_is_not_deleted_and_the_answer_names_it(
    settings, queue_manager, api_token, pg
):
    # Given a use case that a service in queue_manager uses, served as users reach it
    use_case = sensor_use_case()
    service = f"svc_{use_case.name}"

    async def delete() -> dict:
        client = MlDataClient(server.url, api_token)
        try:
            return await client.delete_use_case(use_case.name)
        finally:
            await client.close()

    with LiveServer(create_app(settings)) as server:
        auth = {"Authorization": f"Bearer {api_token}"}
        with TestClient(create_app(settings), headers=auth) as client:
            register(client, use_case)
        bind_service(queue_manager, service, use_case.name)

        # When it is deleted, it is refused with 409 naming the service, and all stays
        with pytest.raises(errors.Conflict) as refused:
            asyncio.run(delete())
        assert "409" in refused.value.detail
        assert service in refused.value.detail
        assert len(tables_of(pg, use_case.name)) == 3

        # Once the service is gone, the delete goes through
        unbind_service(queue_manager, service)
        assert asyncio.run(delete())["name"] == use_case.name
    assert tables_of(pg, use_case.name) == []


def test_a_service_of_another_use_case_does_not_hold_a_delete(client, queue_manager):
    use_case, other = sensor_use_case(), sensor_use_case()
    register(client, use_case)
    bind_service(queue_manager, f"svc_{other.name}", other.name)

    assert client.delete(f"/ml_data_api/use_cases/{use_case.name}").status_code == 200


def test_nothing_is_deleted_while_queue_manager_is_unreachable(settings, auth, pg):
    # Given an ml_data_api whose queue_manager is down
    down = dataclasses.replace(settings, queue_manager_url=f"http://127.0.0.1:{free_port()}")
    use_case = sensor_use_case()
    with TestClient(create_app(down), headers=auth) as client:
        register(client, use_case)

        # When the use case is deleted
        response = client.delete(f"/ml_data_api/use_cases/{use_case.name}")

        # Then 503 says why, and the use case and its rows are all there
        assert response.status_code == 503, response.text
        assert "not deleted" in response.json()["detail"]
        assert "queue_manager" in response.json()["detail"]
        assert client.get(f"/ml_data_api/use_cases/{use_case.name}/counts").json()["training"] == 5
    assert len(tables_of(pg, use_case.name)) == 3


def test_an_unknown_use_case_is_404(client):
    response = client.delete("/ml_data_api/use_cases/never_registered_here")

    assert response.status_code == 404
    assert "never_registered_here" in response.json()["detail"]


def test_only_the_admin_may_delete_a_use_case(client, sensors):
    runtime = {"Authorization": f"Bearer {os.environ['GITS_RUNTIME_TOKEN']}"}

    response = client.delete(f"/ml_data_api/use_cases/{sensors.name}", headers=runtime)

    assert response.status_code == 403
    assert client.get(f"/ml_data_api/use_cases/{sensors.name}").status_code == 200
