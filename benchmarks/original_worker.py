"""The original GITS worker's way, emulated for `make bench`: one message at a time
(prefetch 1), and for each: create its job in queue_manager, score a one-row frame with
PyCaret's `predict_model`, store the row in ml_data_api, mark the job finished, ack.
Three HTTP requests and one `predict_model` call a message, in that order.

    SERVICE_NAME=... QUEUE_MANAGER_URL=... ML_DATA_API_URL=... \
        python -m benchmarks.original_worker

The model is the one bound to SERVICE_NAME, loaded once at start, as the original did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aio_pika
import httpx
import pandas as pd
from pycaret.regression import predict_model

from gits_common.amqp import declare_service_queue
from gits_common.clients import MlDataClient, QueueManagerClient
from gits_common.lifecycle import stop_on_signals
from gits_common.schemas import UseCase
from gits_common.settings import Role, amqp_url, config, configure_logging, token
from gits_ml import modeling

log = logging.getLogger("benchmarks.original_worker")


@dataclass(frozen=True)
class Worker:
    """What one original worker holds: its clients' addresses and the loaded model."""

    name: str
    service: str
    qm_url: str
    ml_url: str
    pipeline: Any
    use_case: UseCase
    label: str  # `<algorithm>:<version>`


async def main() -> None:
    """Consume SERVICE_NAME's queue until SIGTERM."""
    service_name = config("SERVICE_NAME")
    qm_url = str(config("QUEUE_MANAGER_URL")).rstrip("/")
    ml_url = str(config("ML_DATA_API_URL")).rstrip("/")
    bearer = token(Role.runtime)
    pipeline, use_case, label, routing_key = await _load(service_name, qm_url, ml_url, bearer)
    worker = Worker(
        f"{socket.gethostname()}-{os.getpid()}",
        service_name,
        qm_url,
        ml_url,
        pipeline,
        use_case,
        label,
    )
    log.info("service %s now uses model %s", service_name, label)
    stop = stop_on_signals()
    async with (
        await aio_pika.connect(amqp_url()) as connection,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=60) as http,
    ):
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await declare_service_queue(channel, service=service_name, routing_key=routing_key)
        log.info("original worker %s consuming %s", worker.name, queue.name)
        consuming = asyncio.create_task(_consume(queue, http, worker))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([consuming, stopping], return_when=asyncio.FIRST_COMPLETED)
        if consuming.done():
            consuming.result()  # raises what ended it
        consuming.cancel()  # a message in hand is not acked: the broker keeps it
        with suppress(BaseException):  # what cancelling raised: the worker is stopping
            await consuming
    log.info("original worker %s stopped", worker.name)


async def _consume(
    queue: aio_pika.abc.AbstractQueue, http: httpx.AsyncClient, worker: Worker
) -> None:
    """Each message in turn: handled, then acked."""
    async with queue.iterator() as messages:
        async for message in messages:
            await _handle(http, worker, message)
            await message.ack()


async def _load(
    service_name: str, qm_url: str, ml_url: str, bearer: str
) -> tuple[Any, UseCase, str, str]:
    """The pipeline bound to the service, its use case, its label and routing key."""
    qm, ml = QueueManagerClient(qm_url, bearer), MlDataClient(ml_url, bearer)
    try:
        service = await qm.service(service_name)
        assert service.resolved_version is not None
        _, content = await qm.verified_model(service.algorithm_name, service.resolved_version)
        use_case = await ml.use_case(service.use_case)
    finally:
        await qm.close()
        await ml.close()
    pipeline = modeling.from_bytes(content)
    label = f"{service.algorithm_name}:{service.resolved_version}"
    return pipeline, use_case, label, service.routing_key


async def _handle(
    http: httpx.AsyncClient, worker: Worker, message: aio_pika.abc.AbstractIncomingMessage
) -> None:
    """One message, the original's way: job created, `predict_model`, row, job finished."""
    body = json.loads(message.body)
    use_case = worker.use_case
    jobs_url = f"{worker.qm_url}/queue_manager/jobs"
    job = {
        "message_id": body["message_id"],
        "service": worker.service,
        "payload": body,
        "routing_key": message.routing_key or "",
        "worker": worker.name,
        "start_date": datetime.now(UTC).isoformat(),
    }
    (await http.post(jobs_url, json=job)).raise_for_status()
    frame = pd.DataFrame([body["features"]], columns=use_case.feature_names)
    scored = predict_model(worker.pipeline, data=frame, verbose=False)
    prediction = float(scored["prediction_label"].iloc[0])
    row = {
        "message_id": body["message_id"],
        use_case.time_column: body["timestamp"],
        **body["features"],
        "prediction": prediction,
        "model_version": worker.label,
    }
    rows_url = f"{worker.ml_url}/ml_data_api/use_cases/{use_case.name}/production/rows"
    (await http.post(rows_url, json={"rows": [row]})).raise_for_status()
    finished = {
        "last_status": "finished",
        "result": {"prediction": prediction},
        "message": "Results calculated successfully.",
        "model_version": worker.label,
    }
    job_url = f"{jobs_url}/{quote(worker.service, safe='')}/{quote(body['message_id'], safe='')}"
    (await http.patch(job_url, json=finished)).raise_for_status()


if __name__ == "__main__":
    configure_logging("original_worker")
    asyncio.run(main())
