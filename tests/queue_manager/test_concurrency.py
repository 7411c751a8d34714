"""Worker replicas call queue_manager at the same time, redelivered messages included."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from queue_manager.app import create_app
from tests.conftest import LiveServer

REPLICAS = 4
BATCHES = 10
BATCH = 40


def replica(url: str, auth: dict[str, str]) -> list[int]:
    """One replica creating every batch of jobs, as if each message reached them all."""
    codes = []
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        for batch in range(BATCHES):
            jobs = [
                {
                    "message_id": f"m-{batch}-{i}",
                    "service": "s",
                    "payload": {},
                    "routing_key": "r",
                    "worker": "w",
                }
                for i in range(BATCH)
            ]
            codes.append(client.post("/queue_manager/jobs/batch", json={"jobs": jobs}).status_code)
    return codes


def test_the_same_jobs_created_by_replicas_at_once_are_stored_once(settings, auth):
    with LiveServer(create_app(settings)) as server, ThreadPoolExecutor(REPLICAS) as pool:
        futures = [pool.submit(replica, server.url, auth) for _ in range(REPLICAS)]
        codes = [code for f in futures for code in f.result(timeout=120)]
        jobs = httpx.get(
            f"{server.url}/queue_manager/jobs", headers=auth, params={"limit": 10_000}
        ).json()

    assert set(codes) == {200}
    assert len(jobs) == len({j["message_id"] for j in jobs}) == BATCHES * BATCH
