"""The bare ceiling for `make bench`: what the same broker, model and database allow
with nothing else. Consumes a service's queue in batches of what is already queued (as
the workers do: WORKER_BATCH_SIZE, WORKER_PREFETCH), predicts each batch with the saved
pipeline's own `.predict`, COPYs the rows into a production table and commits, then acks
the batch. No jobs, no HTTP, no checks.

    SERVICE_NAME=... BENCH_ROUTING_KEY=... BENCH_MODEL_FILE=... BENCH_TABLE=... \
        python -m benchmarks.bare_ceiling
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from contextlib import suppress
from pathlib import Path
from typing import Any

import aio_pika
import pandas as pd
import psycopg2
from aio_pika.abc import AbstractIncomingMessage
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from gits_common.amqp import declare_service_queue
from gits_common.lifecycle import stop_on_signals
from gits_common.settings import amqp_url, config, configure_logging, postgres_settings
from gits_ml import modeling
from gits_ml.demo import PRODUCT_QUALITY
from workers.settings import batching

log = logging.getLogger("benchmarks.bare_ceiling")
MODEL_LABEL = "ceiling:1"


class Ceiling:
    """A loaded pipeline and a database connection that store batches of messages."""

    def __init__(self, pipeline: Any, conn: Connection, table: str) -> None:
        self.pipeline = pipeline
        self.conn = conn
        target = PRODUCT_QUALITY.target.name if PRODUCT_QUALITY.target else None
        self.features = modeling.feature_names(pipeline, target)
        columns = ["message_id", PRODUCT_QUALITY.time_column, *self.features]
        columns += ["prediction", "model_version"]
        self.copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )

    def store(self, bodies: list[bytes]) -> None:
        """Predict and COPY one batch of message bodies, in one transaction (blocking)."""
        documents = [json.loads(body) for body in bodies]
        frame = pd.DataFrame([d["features"] for d in documents], columns=self.features)
        predictions = self.pipeline.predict(frame)
        lines = []
        for document, values, prediction in zip(
            documents, frame.itertuples(index=False), predictions, strict=True
        ):
            numbers = ",".join(repr(float(v)) for v in (*values, prediction))
            lines.append(
                f'"{document["message_id"]}",{document["timestamp"]},{numbers},"{MODEL_LABEL}"'
            )
        with self.conn, self.conn.cursor() as cur:
            cur.copy_expert(self.copy.as_string(self.conn), io.StringIO("\n".join(lines) + "\n"))


async def main() -> None:
    """Consume SERVICE_NAME's queue until SIGTERM."""
    batch_size, _, prefetch = batching()
    pipeline = modeling.from_bytes(Path(config("BENCH_MODEL_FILE")).read_bytes())
    conn = psycopg2.connect(postgres_settings().dsn("bench_ceiling"))
    ceiling = Ceiling(pipeline, conn, config("BENCH_TABLE"))
    log.info("ceiling now uses model %s", MODEL_LABEL)
    stop = stop_on_signals()
    async with await aio_pika.connect(amqp_url()) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await declare_service_queue(
            channel, service=config("SERVICE_NAME"), routing_key=config("BENCH_ROUTING_KEY")
        )
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(inbox.put)
        log.info("ceiling consuming %s in batches of up to %d", queue.name, batch_size)
        consuming = asyncio.create_task(_consume(inbox, ceiling, batch_size))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([consuming, stopping], return_when=asyncio.FIRST_COMPLETED)
        if consuming.done():
            consuming.result()  # raises what ended it
        consuming.cancel()
        with suppress(BaseException):  # what cancelling raised: the process is stopping
            await consuming
    conn.close()


async def _consume(
    inbox: asyncio.Queue[AbstractIncomingMessage], ceiling: Ceiling, batch_size: int
) -> None:
    """Batches of what is queued: stored in a thread (the loop goes on receiving), then
    acked with one multiple ack."""
    while True:
        batch = [await inbox.get()]
        while len(batch) < batch_size and not inbox.empty():
            batch.append(inbox.get_nowait())
        await asyncio.to_thread(ceiling.store, [m.body for m in batch])
        await batch[-1].ack(multiple=True)


if __name__ == "__main__":
    configure_logging("bare_ceiling")
    asyncio.run(main())
