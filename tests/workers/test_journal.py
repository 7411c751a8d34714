"""The journal's group commit: one request to queue_manager at a time, the records of
every batch that finished meanwhile sent together in the next, each record once, and
every record kept when queue_manager is out of reach."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gits_common import errors
from workers.journal import Journal


class SlowQueueManager:
    """Takes `seconds` a request; out of reach while `down`."""

    def __init__(self, seconds: float = 0.02, *, down: bool = False) -> None:
        self.seconds, self.down = seconds, down
        self.requests: list[list[str]] = []
        self.at_once = 0
        self.most_at_once = 0

    async def record_jobs(self, jobs: list[dict[str, Any]]) -> int:
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            await asyncio.sleep(self.seconds)
            if self.down:
                raise errors.Unavailable("queue_manager answered 503")
            self.requests.append([j["message_id"] for j in jobs])
            return len(jobs)
        finally:
            self.at_once -= 1


def records(batch: int, size: int) -> list[dict[str, Any]]:
    return [{"service": "s", "message_id": f"b{batch}-{i}"} for i in range(size)]


def record_concurrently(journal: Journal, sizes: list[int]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        await asyncio.gather(*(journal.record(records(b, n), stop) for b, n in enumerate(sizes)))

    asyncio.run(main())


def test_batches_finished_while_a_request_is_on_its_way_go_together_in_the_next():
    qm = SlowQueueManager()
    journal = Journal(qm, max_kept=100, retry_seconds=1.0)
    record_concurrently(journal, [3, 3, 3, 3])
    assert qm.most_at_once == 1
    assert len(qm.requests) == 2  # the first alone, the three that waited together
    assert sorted(i for r in qm.requests for i in r) == sorted(
        r["message_id"] for b in range(4) for r in records(b, 3)
    )


def test_while_queue_manager_is_out_of_reach_every_record_is_kept_once():
    qm = SlowQueueManager(down=True)
    journal = Journal(qm, max_kept=100, retry_seconds=1.0)
    record_concurrently(journal, [2, 5, 1])
    assert journal.kept == 8
    qm.down = False
    assert asyncio.run(journal.flush())
    assert sorted(i for r in qm.requests for i in r) == sorted(
        r["message_id"] for b, n in enumerate([2, 5, 1]) for r in records(b, n)
    )


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 20), min_size=1, max_size=12))
def test_any_number_of_batches_is_recorded_each_record_once(sizes):
    qm = SlowQueueManager(seconds=0.001)
    journal = Journal(qm, max_kept=1000, retry_seconds=1.0)
    record_concurrently(journal, sizes)
    sent = [i for r in qm.requests for i in r]
    assert sorted(sent) == sorted(
        r["message_id"] for b, n in enumerate(sizes) for r in records(b, n)
    )
    assert len(qm.requests) <= len(sizes)
    assert journal.kept == 0
