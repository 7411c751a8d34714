"""Messages per second through the whole pipeline (RabbitMQ -> worker -> queue_manager
jobs + ml_data_api rows), for a backlog of messages: one message at a time per worker
(the baseline) against batches of what is queued, with one and two replicas."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from typing import Any

import aio_pika
import httpx

from benchmarks.support import bearer, running_service, service_env
from gits_common import modeling
from gits_common.amqp import dead_letter_queue, declare_sensor_exchange
from gits_common.demo import PRODUCT_QUALITY, DemoConfig, generate
from gits_common.settings import amqp_url

MESSAGES = 1000
SCENARIOS = {  # name: (replicas, batch size)
    "1 worker, 1 message at a time (baseline)": (1, 1),
    "1 worker, batches of up to 100": (1, 100),
    "2 workers, batches of up to 100": (2, 100),
}
DEMO = generate(DemoConfig(history_hours=600, production_minutes=MESSAGES + 10))


def run() -> dict[str, float]:
    """Messages per second for each scenario, and each one's ratio to the baseline."""
    model, _ = modeling.train(PRODUCT_QUALITY, DEMO.training, include=["lightgbm"])
    content = modeling.to_bytes(model)
    rates = {name: _scenario(content, *shape) for name, shape in SCENARIOS.items()}
    baseline = next(iter(rates.values()))
    return {**rates, **{f"{name} / baseline": rate / baseline for name, rate in rates.items()}}


def _scenario(content: bytes, replicas: int, batch: int) -> float:
    tag = uuid.uuid4().hex[:8]
    use_case = PRODUCT_QUALITY.model_copy(update={"name": f"bench_{tag}"})
    service, routing_key = f"bench_{tag}", f"bench.{tag}"
    with ExitStack() as stack:
        ml = stack.enter_context(running_service("ml_data_api", "ML_DATA_API_PORT"))
        qm = stack.enter_context(running_service("queue_manager", "QUEUE_MANAGER_PORT"))
        with httpx.Client(headers=bearer(), timeout=60) as http:
            _setup(http, ml, qm, use_case, content, service, routing_key)
            workers = [
                subprocess.Popen(
                    [sys.executable, "-m", "workers"],
                    env=service_env(
                        SERVICE_NAME=service,
                        QUEUE_MANAGER_URL=qm,
                        ML_DATA_API_URL=ml,
                        WORKER_BATCH_SIZE=str(batch),
                    ),
                )
                for _ in range(replicas)
            ]
            try:
                counts = f"{ml}/ml_data_api/use_cases/{use_case.name}/counts"
                _publish(routing_key, _messages(0, 10))  # warm up: models loaded
                _wait_for(http, counts, 10)
                started = time.perf_counter()
                _publish(routing_key, _messages(10, MESSAGES + 10))
                _wait_for(http, counts, MESSAGES + 10)
                return MESSAGES / (time.perf_counter() - started)
            finally:
                for worker in workers:
                    worker.terminate()
                    worker.wait(timeout=30)
                asyncio.run(_delete_queues(service))


def _setup(
    http: httpx.Client,
    ml: str,
    qm: str,
    use_case: Any,
    content: bytes,
    service: str,
    routing_key: str,
) -> None:
    http.post(
        f"{ml}/ml_data_api/use_cases", json=use_case.model_dump(mode="json")
    ).raise_for_status()
    form = {
        "name": use_case.name,
        "use_case": use_case.name,
        "task": "regression",
        "features": json.dumps(use_case.feature_names),
    }
    http.post(
        f"{qm}/queue_manager/algorithms", data=form, files={"file": ("m.pkl", content)}
    ).raise_for_status()
    http.put(
        f"{qm}/queue_manager/services/{service}",
        json={"routing_key": routing_key, "algorithm_name": use_case.name},
    ).raise_for_status()


def _messages(start: int, stop: int) -> list[dict[str, Any]]:
    rows = DEMO.production.iloc[start:stop]
    return [
        {
            "message_id": row.message_id,
            "timestamp": row.timestamp.isoformat(),
            "features": {f: getattr(row, f) for f in PRODUCT_QUALITY.feature_names},
        }
        for row in rows.itertuples()
    ]


def _publish(routing_key: str, bodies: list[dict[str, Any]]) -> None:
    async def go() -> None:
        async with await aio_pika.connect(amqp_url()) as connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await declare_sensor_exchange(channel)
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            json.dumps(b).encode(),
                            message_id=b["message_id"],
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=routing_key,
                    )
                    for b in bodies
                )
            )

    asyncio.run(go())


def _wait_for(http: httpx.Client, counts_url: str, rows: int) -> None:
    deadline = time.monotonic() + 600
    while http.get(counts_url).json()["production"] < rows:
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not finish in 10 minutes")
        time.sleep(0.05)


async def _delete_queues(service: str) -> None:
    async with await aio_pika.connect(amqp_url()) as connection:
        channel = await connection.channel()
        for name in (service, dead_letter_queue(service)):
            await channel.queue_delete(name)


def report(result: dict[str, float]) -> str:
    """A short table for the terminal."""
    lines = [f"pipeline throughput, backlog of {MESSAGES} messages, real broker and PostgreSQL"]
    for name in SCENARIOS:
        lines.append(
            f"  {name:<42} {result[name]:>7,.0f} msg/s  ({result[f'{name} / baseline']:.1f}x)"
        )
    return "\n".join(lines)
