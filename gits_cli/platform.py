"""The platform as the `gits` command sees it: the services' own clients
(`gits_common.clients`), plain JSON clients of monitoring_api and retraining_api, and the
broker's view of each service's queues. Every failure is a domain error
(`gits_common.errors`), which the command turns into one line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aio_pika
import httpx

from gits_cli.settings import Settings, bearer, broker_url
from gits_common import errors
from gits_common.amqp import dead_letter_queue
from gits_common.clients import ApiClient, MlDataClient, QueueManagerClient
from gits_common.registry import ServiceRead, VersionRef
from gits_common.settings import Role

JOB_POLL_SECONDS = 1.0
JOB_READS_AT_ONCE = 16


@dataclass(frozen=True)
class QueueState:
    """A service's queue on the broker: messages waiting, consumers, dead letters."""

    messages: int
    consumers: int
    dead_letters: int


class Platform:
    """The four APIs, with the token of one role. Use as `async with`."""

    def __init__(self, settings: Settings, role: Role) -> None:
        self.settings = settings
        token = bearer(role)
        urls = settings.urls
        self.ml_data = MlDataClient(urls["ml_data_api"], token, timeout=120.0)
        self.qm = QueueManagerClient(urls["queue_manager"], token, timeout=120.0)
        self.monitoring = ApiClient(
            urls["monitoring_api"], token, timeout=300.0, name="monitoring_api"
        )
        self.retraining = ApiClient(
            urls["retraining_api"], token, timeout=120.0, name="retraining_api"
        )

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(
            self.ml_data.close(), self.qm.close(), self.monitoring.close(), self.retraining.close()
        )

    # --- queue_manager ---

    async def service(self, name: str) -> ServiceRead | None:
        """A service, or None when there is none of that name."""
        try:
            return await self.qm.service(name)
        except errors.NotFound:
            return None

    async def service_of(self, use_case: str, name: str | None) -> ServiceRead:
        """The named service, or the use case's only one; `NotFound` or `InvalidInput`
        otherwise, saying what to do."""
        if name is not None:
            found = await self.service(name)
            if found is None:
                raise errors.NotFound(f"no service {name}: bind one with `gits bind`")
            return found
        serving = [s for s in await self.qm.services() if s.use_case == use_case]
        if len(serving) != 1:
            names = ", ".join(s.name for s in serving) or "none"
            raise errors.InvalidInput(
                f"use case {use_case} has {len(serving)} services ({names}): name one with "
                "--service, or bind one with `gits bind`"
            )
        return serving[0]

    async def bind(
        self, service: str, algorithm: str, version: VersionRef, routing_key: str | None
    ) -> ServiceRead:
        """Create or rebind a service; a new one's routing key defaults to its name, an
        existing one keeps its own unless one is given."""
        current = await self.service(service)
        key = routing_key or (current.routing_key if current else service)
        return await self.qm.bind_service(
            service,
            routing_key=key,
            algorithm_name=algorithm,
            algorithm_version=version,
            updated_by="gits",
        )

    async def wait_until_done(
        self,
        service: str,
        message_ids: list[str],
        on_done: Callable[[int], None],
        timeout: float,
    ) -> None:
        """Wait until every message's job is finished or failed (a message published
        again is done at once: its job is), telling `on_done(n)` of each n done. Raises
        `Unavailable` naming how many are left after `timeout` seconds (no worker?)."""
        deadline = time.monotonic() + timeout
        left = list(message_ids)
        gate = asyncio.Semaphore(JOB_READS_AT_ONCE)
        jobs = f"/queue_manager/jobs/{quote(service, safe='')}"

        async def done(message_id: str) -> bool:
            async with gate:
                try:
                    job = await self.qm.request("GET", f"{jobs}/{quote(message_id, safe='')}")
                except errors.NotFound:
                    return False
                return job["last_status"] in ("finished", "failed")

        while left:
            states = await asyncio.gather(*(done(m) for m in left))
            still = [m for m, finished in zip(left, states, strict=True) if not finished]
            on_done(len(left) - len(still))
            left = still
            if left and time.monotonic() > deadline:
                raise errors.Unavailable(
                    f"{len(left)} of {len(message_ids)} messages have no prediction after "
                    f"{timeout:g} s: are {service}'s workers running? (`gits status`)"
                )
            if left:
                await asyncio.sleep(JOB_POLL_SECONDS)

    async def algorithms(self) -> list[dict[str, Any]]:
        """Every stored model version."""
        found: list[dict[str, Any]] = await self.qm.request("GET", "/queue_manager/algorithms")
        return found

    # --- retraining_api ---

    async def start_retraining(self, body: dict[str, Any]) -> dict[str, Any]:
        """A queued retraining job."""
        job: dict[str, Any] = await self.retraining.request(
            "POST", "/retraining_api/jobs", json=body
        )
        return job

    async def job(self, job_id: int) -> dict[str, Any]:
        """One retraining job."""
        found: dict[str, Any] = await self.retraining.request(
            "GET", f"/retraining_api/jobs/{job_id}"
        )
        return found

    async def wait_for_job(
        self, job_id: int, on_progress: Callable[[dict[str, Any]], None], timeout: float
    ) -> dict[str, Any]:
        """Poll a retraining job until it is finished or failed, telling `on_progress`
        of each state; `Unavailable` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(job_id)
            on_progress(job)
            if job["status"] in ("finished", "failed"):
                return job
            if time.monotonic() > deadline:
                raise errors.Unavailable(
                    f"retraining job {job_id} is still {job['status']} after {timeout:g} s; "
                    f"follow it with `gits job {job_id}`"
                )
            await asyncio.sleep(JOB_POLL_SECONDS)

    async def register(self, job_id: int, algorithm: str | None) -> dict[str, Any]:
        """Register a job's challenger as a new algorithm version, unbound."""
        body: dict[str, Any] = {"requested_by": "gits"}
        if algorithm is not None:
            body["algorithm_name"] = algorithm
        record: dict[str, Any] = await self.retraining.request(
            "POST", f"/retraining_api/jobs/{job_id}/register", json=body
        )
        return record

    async def promote(self, job_id: int) -> dict[str, Any]:
        """Promote a job's challenger to its service."""
        done: dict[str, Any] = await self.retraining.request(
            "POST", f"/retraining_api/jobs/{job_id}/promote", json={"requested_by": "gits"}
        )
        return done

    async def rollback(self, service: str) -> dict[str, Any]:
        """Bind a service back to the version its newest promotion replaced."""
        done: dict[str, Any] = await self.retraining.request(
            "POST",
            f"/retraining_api/services/{quote(service, safe='')}/rollback",
            json={"requested_by": "gits"},
        )
        return done

    # --- monitoring_api ---

    async def report(self, name: str, kind: str, last: int | None) -> dict[str, Any]:
        """A monitoring report's JSON summary."""
        params = {"last": last} if last else {}
        path = f"/monitoring_api/use_cases/{quote(name)}/reports/{quote(kind)}"
        found: dict[str, Any] = await self.monitoring.request("GET", path, params=params)
        return found

    async def task_view(self, name: str, view: str, last: int | None) -> dict[str, Any]:
        """monitoring_api's answer for a use case's task (`view`: classification,
        anomalies, or performance/estimated) over its newest `last` rows."""
        params = {"last": last} if last is not None else {}
        path = f"/monitoring_api/use_cases/{quote(name)}/{view}"
        found: dict[str, Any] = await self.monitoring.request("GET", path, params=params)
        return found

    async def history(self, name: str, *, run: bool) -> dict[str, Any]:
        """The metric history (after computing a point now, with `run`)."""
        base = f"/monitoring_api/use_cases/{quote(name)}/history"
        if run:
            await self.monitoring.request("POST", f"{base}/run")
        found: dict[str, Any] = await self.monitoring.request("GET", base)
        return found

    async def newest_alert(self, name: str) -> dict[str, Any] | None:
        """The use case's newest alert, or None."""
        alerts = await self.monitoring.request(
            "GET", f"/monitoring_api/use_cases/{quote(name)}/alerts"
        )
        return alerts[-1] if alerts else None

    # --- health ---

    async def health(self) -> dict[str, str | None]:
        """{api or 'django_admin': None when up, else why not}."""
        targets = {name: f"{url}/health" for name, url in self.settings.urls.items()}
        targets["django_admin"] = f"{self.settings.admin_url}/accounts/login/"
        found: dict[str, str | None] = {}
        async with httpx.AsyncClient(timeout=5) as http:
            for name, url in targets.items():
                try:
                    status = (await http.get(url)).status_code
                except httpx.TransportError as exc:
                    found[name] = f"unreachable at {url} ({type(exc).__name__})"
                    continue
                found[name] = None if status < 500 else f"answers {status} at {url}"
        return found


async def queue_states(services: list[str]) -> dict[str, QueueState | None]:
    """Each service's queue as the broker holds it (None for a queue that is missing);
    `Unavailable` when the broker cannot be reached."""

    async def count(connection: Any, queue: str) -> tuple[int, int] | None:
        channel = await connection.channel()  # a missing queue closes its channel
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return None
        result = declared.declaration_result
        await channel.close()
        return int(result.message_count), int(result.consumer_count)

    try:
        connection = await aio_pika.connect(broker_url(), timeout=10)
    except (TimeoutError, aio_pika.exceptions.AMQPException, OSError) as exc:
        raise errors.Unavailable(f"RabbitMQ unreachable: {exc!r}") from exc
    out: dict[str, QueueState | None] = {}
    async with connection:
        for service in services:
            main = await count(connection, service)
            dead = await count(connection, dead_letter_queue(service))
            out[service] = (
                None if main is None else QueueState(main[0], main[1], dead[0] if dead else 0)
            )
    return out
