"""The stores themselves, below the API, on every backend available here: any job a
worker may record comes back as it was sent (the PostgreSQL store COPYs jobs as text,
so every character that text format escapes is tried), a redelivered batch is written
once, and the last word on a job wins."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gits_common.jobs import JobCreate, JobRecord, JobStatus
from queue_manager.app import open_store
from queue_manager.settings import load_settings
from queue_manager.store import Store
from tests.conftest import QM_BACKENDS, private_store

T0 = datetime(2025, 1, 1, tzinfo=UTC)
# Text a store can hold (no NUL, no lone surrogates: the API refuses those), with the
# characters COPY's text format escapes made likely.
TEXT = st.lists(
    st.one_of(
        st.sampled_from(["\\", "\t", "\n", "\r", "\\N", '"', "é", "€", "😀"]),
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    ),
    max_size=20,
).map("".join)
# Keys MongoDB can hold (no "$" first, no "."): the API refuses the others.
KEY = TEXT.filter(lambda k: "." not in k and not k.startswith("$"))
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module", params=QM_BACKENDS)
def store(request: pytest.FixtureRequest, postgres_dsn: str) -> Iterator[Store]:
    """A private, empty store of each backend."""
    opened = open_store(private_store(load_settings(), request.param))
    yield opened
    opened.close()


def record(**fields: Any) -> JobRecord:
    """A finished job of service s, overridden by `fields`."""
    return JobRecord(
        **{
            "service": "s",
            "message_id": "m",
            "payload": {},
            "last_status": JobStatus.finished,
            "start_date": T0,
            "end_date": T0 + timedelta(seconds=1),
            "worker": "w",
            **fields,
        }
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.dictionaries(KEY, JSON, max_size=5), result=JSON, message=TEXT, key=TEXT)
def test_any_job_comes_back_as_it_was_recorded(store, payload, result, message, key):
    key = f"{uuid.uuid4().hex}{key}"  # a new job each time (a stored one keeps its payload)
    sent = record(message_id=key, payload=payload, result=result, message=message)
    store.run(lambda s: s.record_jobs(jobs=[sent], now=T0))

    got = store.run(lambda s: s.find_jobs(keys=[("s", key)]))[("s", key)]

    assert got["payload"] == payload
    assert got["result"] == result
    assert got["message"] == message
    assert got["metadata"]["start_date"] == T0


def test_a_batch_recorded_twice_is_stored_once_and_a_finished_job_keeps_its_first_word(store):
    first = [record(message_id=f"twice-{i}", message="first") for i in range(50)]
    again = [r.model_copy(update={"message": "again"}) for r in first]
    store.run(lambda s: s.record_jobs(jobs=first, now=T0))
    store.run(lambda s: s.record_jobs(jobs=[*again, again[0]], now=T0))

    found = store.run(lambda s: s.find_jobs(keys=[("s", f"twice-{i}") for i in range(50)]))

    assert len(found) == 50
    assert {job["message"] for job in found.values()} == {"first"}


@pytest.mark.parametrize(
    ("first", "then", "kept"),
    [
        # a later copy of a stored message fails: the job still says what was stored
        (JobStatus.finished, JobStatus.failed, "first"),
        # a failed copy first, then one whose prediction is stored: finished, its payload
        (JobStatus.failed, JobStatus.finished, "then"),
        (JobStatus.failed, JobStatus.failed, "then"),  # failed again: the last reason
        (JobStatus.finished, JobStatus.finished, "first"),
    ],
)
def test_a_job_says_what_was_stored_whatever_copies_of_its_message_came(store, first, then, kept):
    key = f"copies-{uuid.uuid4().hex[:8]}"
    written = {
        name: record(
            message_id=key,
            last_status=status,
            payload={"copy": name},
            message=name,
            result=[{"copy": name}] if status is JobStatus.finished else None,
        )
        for name, status in (("first", first), ("then", then))
    }
    for name in ("first", "then"):
        store.run(lambda s, name=name: s.record_jobs(jobs=[written[name]], now=T0))

    job = store.run(lambda s: s.find_jobs(keys=[("s", key)]))[("s", key)]

    assert job["message"] == kept
    assert job["last_status"] == written[kept].last_status.value
    payload_from = "first" if (first, then) == (JobStatus.failed, JobStatus.failed) else kept
    assert job["payload"] == {"copy": payload_from}


def test_creating_jobs_reports_only_the_new_ones_and_keeps_the_stored(store):
    create = [
        JobCreate(service="s", message_id=f"new-{i}", payload={"i": i}, worker="w")
        for i in range(3)
    ]
    assert store.run(lambda s: s.insert_jobs(jobs=create[:2], now=T0)) == {
        ("s", "new-0"),
        ("s", "new-1"),
    }
    changed = [c.model_copy(update={"payload": {"i": -1}}) for c in create]
    assert store.run(lambda s: s.insert_jobs(jobs=changed, now=T0)) == {("s", "new-2")}
    found = store.run(lambda s: s.find_jobs(keys=[("s", "new-0"), ("s", "new-2")]))
    assert found[("s", "new-0")]["payload"] == {"i": 0}
    assert found[("s", "new-2")]["payload"] == {"i": -1}


def test_counts_follow_every_change_even_from_concurrent_batches(store):
    service = f"counted-{uuid.uuid4().hex[:6]}"
    created = [
        JobCreate(service=service, message_id=f"c-{i}", payload={}, worker="w") for i in range(300)
    ]
    store.run(lambda s: s.insert_jobs(jobs=created, now=T0))

    def finish(part: range, status: JobStatus) -> None:
        done = [record(service=service, message_id=f"c-{i}", last_status=status) for i in part]
        store.run(lambda s: s.record_jobs(jobs=done, now=T0))

    # Batches from several workers at once, some overlapping, some new jobs among them
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(
                lambda args: finish(*args),
                [
                    (range(0, 150), JobStatus.finished),
                    (range(100, 250), JobStatus.finished),
                    (range(250, 280), JobStatus.failed),
                    (range(290, 320), JobStatus.finished),
                ],
            )
        )
    store.run(lambda s: s.update_jobs(changes={(service, "c-0"): {"last_status": "failed"}}))

    listed = store.run(
        lambda s: s.list_jobs(status=None, service=service, since=None, until=None, limit=1000)
    )
    expected: dict[str, int] = {}
    for job in listed:
        expected[job["last_status"]] = expected.get(job["last_status"], 0) + 1
    assert store.run(lambda s: s.count_jobs(service=service, since=None)) == expected
    assert expected == {"finished": 279, "failed": 31, "processing": 10}


def test_concurrent_batches_on_shared_jobs_never_deadlock(store):
    # Given four workers' batches on the same 300 jobs, in random orders, recorded and
    # updated at once (the breaker's case: 69 of 200 such requests deadlocked)
    service = f"shared-{uuid.uuid4().hex[:6]}"
    keys = [f"j-{i}" for i in range(300)]
    rng = random.Random(7)

    def work(worker: int) -> None:
        for round_ in range(10):
            chosen = rng.sample(keys, 100)
            status = JobStatus.finished if (worker + round_) % 2 else JobStatus.failed
            batch = [record(service=service, message_id=k, last_status=status) for k in chosen]
            recorded(store, batch)
            updated(store, {(service, k): {"last_status": "finished"} for k in chosen[49::-1]})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(4)))  # raises if any unit of work failed

    listed = store.run(
        lambda s: s.list_jobs(status=None, service=service, since=None, until=None, limit=1000)
    )
    counted = store.run(lambda s: s.count_jobs(service=service, since=None))
    assert sum(counted.values()) == len(listed)
    assert counted == {
        status: sum(j["last_status"] == status for j in listed)
        for status in {j["last_status"] for j in listed}
    }


def recorded(store: Store, batch: list[JobRecord]) -> int:
    return store.run(lambda s: s.record_jobs(jobs=batch, now=T0))


def updated(store: Store, changes: dict[tuple[str, str], dict[str, Any]]) -> None:
    store.run(lambda s: s.update_jobs(changes=changes))


def test_a_job_recorded_after_it_was_created_counts_its_time_from_its_start(store):
    key = f"late-{uuid.uuid4().hex[:6]}"
    created = JobCreate(service="s", message_id=key, payload={}, worker="w", start_date=T0)
    store.run(lambda s: s.insert_jobs(jobs=[created], now=T0))
    done = record(message_id=key, start_date=None, end_date=T0 + timedelta(seconds=2))

    store.run(lambda s: s.record_jobs(jobs=[done], now=T0 + timedelta(seconds=2)))

    stored = store.run(lambda s: s.find_jobs(keys=[("s", key)]))[("s", key)]
    assert stored["metadata"]["start_date"] == T0
    assert stored["metadata"]["time_elapsed_sec"] == 2.0
