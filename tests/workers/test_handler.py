"""The handler's decisions, without a broker: what is stored, what is dead-lettered with
which reason, and what is retried, for every kind of answer its two APIs can give."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from gits_common import errors
from gits_common.jobs import JobRecord
from gits_common.schemas import Table
from gits_ml.demo import PRODUCT_QUALITY
from tests.model_files import fitted
from workers.handler import Delivery, Handler, Outcome
from workers.journal import Journal
from workers.models import LoadedModel, NoModel, _validator

FEATURES = PRODUCT_QUALITY.feature_names


def reading(message_id: str, **features: Any) -> bytes:
    values = dict.fromkeys(FEATURES, 1.0) | features
    return json.dumps(
        {"message_id": message_id, "timestamp": "2025-01-01T00:00:00Z", "features": values}
    ).encode()


class FakeQueueManager:
    """Keeps job records by message id (JobRecord's fields, as queue_manager would
    after its checks); out of reach for its first `down` calls."""

    def __init__(self, *, down: int = 0) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.down = down
        self.calls = 0

    async def record_jobs(self, jobs: list[dict[str, Any]]) -> int:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise errors.Unavailable("queue_manager answered 503")
        for job in jobs:
            JobRecord.model_validate(job)  # what queue_manager would refuse, this refuses
            self.jobs[job["message_id"]] = job
        return len(jobs)


class FakeMlData:
    """Stores rows once per message id (as ON CONFLICT DO NOTHING does); refuses a
    batch holding a row whose `AH_data` is `bad_value` (as a 422, or a 500 when
    `server_error`); out of reach for its first `down` calls."""

    def __init__(
        self, *, bad_value: float = -1.0, server_error: bool = False, down: int = 0
    ) -> None:
        self.rows: list[dict[str, Any]] = []
        self.bad_value, self.server_error, self.down = bad_value, server_error, down
        self.calls = 0

    async def insert_rows(self, use_case: str, table: Table, rows: list[dict]) -> dict:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise errors.Unavailable("ml_data_api unreachable: connection refused")
        if any(r["AH_data"] == self.bad_value for r in rows):
            if self.server_error:
                raise errors.DependencyFailed("ml_data_api answered 500: Internal Server Error")
            raise errors.InvalidInput("ml_data_api answered 422: row 0, column 'AH_data': bad")
        stored = {r["message_id"] for r in self.rows}
        new = [r for r in rows if r["message_id"] not in stored]
        self.rows += new
        skipped = [r["message_id"] for r in rows if r["message_id"] in stored]
        return {"inserted": len(new), "skipped": len(skipped), "skipped_ids": skipped}


class FakeModels:
    def __init__(self, model: LoadedModel | None, problem: str | None = None) -> None:
        self.model, self.problem = model, problem
        self.unusable_reasons: list[str] = []

    async def current(self) -> LoadedModel:
        if self.model is None:
            raise NoModel(self.problem or "no model")
        return self.model

    async def unusable(self, model: LoadedModel, reason: str) -> None:
        self.unusable_reasons.append(reason)

    async def usable(self, model: LoadedModel) -> None:
        pass


def model(pipeline: Any = None) -> LoadedModel:
    return LoadedModel(
        algorithm="pq",
        version=1,
        sha256="0" * 64,
        use_case=PRODUCT_QUALITY,
        features=FEATURES,
        pipeline=pipeline if pipeline is not None else fitted(FEATURES),
        validator=_validator(PRODUCT_QUALITY),
    )


def handler(qm: Any, ml: Any, models: Any, **options: Any) -> Handler:
    settings = {
        "retry_attempts": 3,
        "retry_base_delay": 0.01,
        "max_message_bytes": 1_000_000,
        **options,
    }
    return Handler(
        service="svc",
        worker_id="w",
        ml_data=ml,
        models=models,
        journal=Journal(qm, max_kept=1000, retry_seconds=0.01),
        stop=asyncio.Event(),
        **settings,
    )


def handle(h: Handler, bodies: list[bytes]) -> list[Any]:
    return asyncio.run(h.handle([Delivery(b, None, "rk") for b in bodies]))


def test_good_messages_are_stored_and_their_jobs_finished():
    qm, ml = FakeQueueManager(), FakeMlData()
    settled = handle(handler(qm, ml, FakeModels(model())), [reading(f"m{i}") for i in range(5)])
    assert [s.outcome for s in settled] == [Outcome.ack] * 5
    assert len(ml.rows) == 5
    assert {j["last_status"] for j in qm.jobs.values()} == {"finished"}


@pytest.mark.parametrize("server_error", [False, True], ids=["422", "500"])
def test_a_refused_row_is_found_by_halving_and_its_neighbours_are_stored(server_error):
    # Given a batch of seven good readings and one the API refuses (as 422, or as 500)
    qm, ml = FakeQueueManager(), FakeMlData(server_error=server_error)
    bodies = [reading(f"m{i}", AH_data=-1.0 if i == 5 else 1.0) for i in range(8)]

    settled = handle(handler(qm, ml, FakeModels(model())), bodies)

    # Then the seven are stored, only the bad one is dead-lettered, with the API's reason,
    # and nothing was retried as an outage
    assert [s.outcome for s in settled] == [Outcome.ack] * 5 + [Outcome.dead_letter] + [
        Outcome.ack
    ] * 2
    assert sorted(r["message_id"] for r in ml.rows) == [f"m{i}" for i in range(8) if i != 5]
    assert "ml_data_api refused the prediction" in settled[5].reason
    assert qm.jobs["m5"]["last_status"] == "failed"
    assert qm.jobs["m5"]["message"] == settled[5].reason
    assert ml.calls <= 1 + 2 * 3  # halving: log2(8) levels of two calls at most


def test_an_outage_of_ml_data_api_is_retried_and_the_batch_then_stored():
    qm, ml = FakeQueueManager(), FakeMlData(down=2)
    settled = handle(handler(qm, ml, FakeModels(model())), [reading("a"), reading("b")])
    assert [s.outcome for s in settled] == [Outcome.ack] * 2
    assert ml.calls == 3
    assert len(ml.rows) == 2


def test_a_lasting_outage_of_ml_data_api_dead_letters_with_the_reason():
    qm, ml = FakeQueueManager(), FakeMlData(down=99)
    settled = handle(handler(qm, ml, FakeModels(model())), [reading("a")])
    assert settled[0].outcome is Outcome.dead_letter
    assert "gave up after 3 attempts" in settled[0].reason
    assert qm.jobs["a"]["last_status"] == "failed"


def test_with_queue_manager_down_predictions_go_on_and_jobs_are_recorded_when_it_is_back():
    # Given queue_manager out of reach for the next 5 calls
    qm, ml = FakeQueueManager(down=5), FakeMlData()
    h = handler(qm, ml, FakeModels(model()))

    # When two batches arrive, Then both are stored and acked, their jobs kept
    first = handle(h, [reading("a"), reading("b")])
    second = handle(h, [reading("c")])
    assert [s.outcome for s in first + second] == [Outcome.ack] * 3
    assert len(ml.rows) == 3
    assert qm.jobs == {} and h.journal.kept == 3

    # And once queue_manager is back, every job is recorded, in order
    assert not asyncio.run(h.journal.flush())  # still down (its 2nd and 3rd refusal)
    while not asyncio.run(h.journal.flush()):
        pass
    assert h.journal.kept == 0
    assert list(qm.jobs) == ["a", "b", "c"]
    assert {j["last_status"] for j in qm.jobs.values()} == {"finished"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"hello", "message is not JSON"),
        (reading("nan", AH_data=float("nan")), "AH_data"),
        (reading("x" * 513), "message_id"),
        (reading("nul\u0000id"), "message_id"),
        (json.dumps({"message_id": "big", "n": 2**64}).encode(), "not a sensor message"),
        (reading("missing").replace(b', "AH_data": 1.0', b""), "missing feature 'AH_data'"),
        (reading("text", AH_data="warm"), "AH_data"),
    ],
    ids=["text", "nan", "long-id", "nul-id", "huge-int", "missing", "mistyped"],
)
def test_an_unusable_message_is_dead_lettered_with_its_reason_on_a_recorded_job(body, reason):
    qm, ml = FakeQueueManager(), FakeMlData()
    settled = handle(handler(qm, ml, FakeModels(model())), [body, reading("fine")])
    assert settled[0].outcome is Outcome.dead_letter
    assert reason in settled[0].reason
    assert settled[1].outcome is Outcome.ack
    failed = [j for j in qm.jobs.values() if j["last_status"] == "failed"]
    assert len(failed) == 1 and failed[0]["message"] == settled[0].reason
    json.dumps(failed[0]["payload"], allow_nan=False)  # storable, whatever the body held


def test_a_message_over_the_size_limit_is_dead_lettered_and_its_job_keeps_its_start():
    qm, ml = FakeQueueManager(), FakeMlData()
    big = reading("big", note="x" * 20_000)
    settled = handle(handler(qm, ml, FakeModels(model()), max_message_bytes=10_000), [big])
    assert "over the limit of 10000" in settled[0].reason
    (job,) = qm.jobs.values()
    assert job["payload"]["bytes"] == len(big)
    assert len(json.dumps(job["payload"])) < 3000


def test_no_model_dead_letters_with_the_reason():
    qm, ml = FakeQueueManager(), FakeMlData()
    models = FakeModels(None, "model pq:1 cannot be used (load): not a loadable model file")
    settled = handle(handler(qm, ml, models), [reading("a")])
    assert settled[0].outcome is Outcome.dead_letter
    assert "not a loadable model file" in settled[0].reason
    assert qm.jobs["a"]["last_status"] == "failed"


def test_a_model_that_raises_is_narrowed_to_the_messages_it_fails_on():
    class Picky:
        def predict(self, frame):
            if (frame["AH_data"] == 13.0).any():
                raise ValueError("cannot score 13")
            return frame["AH_data"].to_numpy()

    qm, ml, models = FakeQueueManager(), FakeMlData(), FakeModels(model(Picky()))
    bodies = [reading(f"m{i}", AH_data=13.0 if i in (1, 6) else 2.0) for i in range(8)]
    settled = handle(handler(qm, ml, models), bodies)
    dead = [i for i, s in enumerate(settled) if s.outcome is Outcome.dead_letter]
    assert dead == [1, 6]
    assert "cannot score 13" in settled[1].reason
    assert len(ml.rows) == 6
    assert models.unusable_reasons == []


def test_a_model_that_fails_on_everything_is_reported_unusable():
    class Broken:
        def predict(self, frame):
            raise IndexError("pop from empty list")

    models = FakeModels(model(Broken()))
    settled = handle(handler(FakeQueueManager(), FakeMlData(), models), [reading("a")])
    assert settled[0].outcome is Outcome.dead_letter
    assert "IndexError: pop from empty list" in settled[0].reason
    assert "pop from empty list" in models.unusable_reasons[0]


def test_a_redelivered_finished_message_is_acked_without_storing_again():
    qm, ml = FakeQueueManager(), FakeMlData()
    h = handler(qm, ml, FakeModels(model()))
    handle(h, [reading("a")])
    settled = handle(h, [reading("a")])
    assert settled[0].outcome is Outcome.ack
    assert len(ml.rows) == 1


def test_a_message_near_the_delivery_limit_is_dead_lettered_with_why():
    qm, ml = FakeQueueManager(), FakeMlData()
    h = handler(qm, ml, FakeModels(model()))
    settled = asyncio.run(h.handle([Delivery(reading("a"), None, "rk", deliveries_before=4)]))
    assert settled[0].outcome is Outcome.dead_letter
    assert "delivered 4 times before" in settled[0].reason
    assert qm.jobs["a"]["last_status"] == "failed"


def test_a_message_nested_too_deep_for_python_is_dead_lettered_not_a_crash():
    # orjson#458 / simplejson#28: 200,000 nested arrays exhaust the JSON decoder's stack
    deep = b'{"message_id":"deep","x":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    qm, ml = FakeQueueManager(), FakeMlData()
    settled = handle(handler(qm, ml, FakeModels(model())), [deep, reading("fine")])
    assert settled[0].outcome is Outcome.dead_letter
    assert "too deep" in settled[0].reason
    assert settled[1].outcome is Outcome.ack


def test_any_unexpected_failure_is_narrowed_to_its_message():
    class Surprising(FakeMlData):
        async def insert_rows(self, use_case: str, table: Table, rows: list[dict]) -> dict:
            if any(r["message_id"] == "odd" for r in rows):
                raise RuntimeError("something nobody foresaw")
            return await super().insert_rows(use_case, table, rows)

    qm, ml = FakeQueueManager(), Surprising()
    bodies = [reading(f"m{i}") for i in range(5)] + [reading("odd")] + [reading("last")]
    settled = handle(handler(qm, ml, FakeModels(model())), bodies)
    assert [s.outcome for s in settled] == [Outcome.ack] * 5 + [Outcome.dead_letter, Outcome.ack]
    assert "RuntimeError: something nobody foresaw" in settled[5].reason
    assert len(ml.rows) == 6


def test_a_model_that_never_answers_on_a_message_dead_letters_it_and_replaces_the_worker():
    class Stuck:
        def predict(self, frame):
            if (frame["AH_data"] == 99.0).any():
                time.sleep(3)
            return frame["AH_data"].to_numpy()

    qm, ml = FakeQueueManager(), FakeMlData()
    # A batch with the stuck reading goes back to the queue whole...
    h = handler(qm, ml, FakeModels(model(Stuck())), predict_seconds=0.3)
    batch = handle(h, [reading("a"), reading("slow", AH_data=99.0)])
    assert [s.outcome for s in batch] == [Outcome.retry] * 2
    assert h.wedged
    # ...and when it comes back alone (a redelivery), it is dead-lettered with why
    alone = handler(qm, ml, FakeModels(model(Stuck())), predict_seconds=0.3)
    settled = handle(alone, [reading("slow", AH_data=99.0)])
    assert settled[0].outcome is Outcome.dead_letter
    assert "took longer than 0.3 s" in settled[0].reason
    assert alone.wedged


def test_batches_in_flight_each_get_the_whole_time_limit_for_their_own_model_call():
    class Slow:
        def predict(self, frame):
            time.sleep(0.2)
            return frame["AH_data"].to_numpy()

    qm, ml = FakeQueueManager(), FakeMlData()
    h = handler(qm, ml, FakeModels(model(Slow())), predict_seconds=0.3)

    async def three_batches_at_once() -> list[Any]:
        return await asyncio.gather(
            *(h.handle([Delivery(reading(f"m{b}"), None, "rk")]) for b in range(3))
        )

    # the third waits 0.4 s behind the others' calls: no time limit is overrun
    settled = asyncio.run(three_batches_at_once())
    assert [s[0].outcome for s in settled] == [Outcome.ack] * 3
    assert not h.wedged


def test_once_the_model_is_stuck_no_batch_in_flight_calls_it_and_none_is_dead_lettered():
    class StuckOnce:
        calls = 0

        def predict(self, frame):
            StuckOnce.calls += 1
            if (frame["AH_data"] == 99.0).any():
                time.sleep(1.5)
            return frame["AH_data"].to_numpy()

    qm, ml = FakeQueueManager(), FakeMlData()
    h = handler(qm, ml, FakeModels(model(StuckOnce())), predict_seconds=0.3)

    async def behind_a_stuck_call() -> list[Any]:
        stuck = h.handle([Delivery(reading("slow", AH_data=99.0), None, "rk")])
        waiting = [h.handle([Delivery(reading(f"m{b}"), None, "rk")]) for b in range(2)]
        return await asyncio.gather(stuck, *waiting)

    stuck, *waiting = asyncio.run(behind_a_stuck_call())
    assert stuck[0].outcome is Outcome.dead_letter  # alone: it is the cause
    assert [w[0].outcome for w in waiting] == [Outcome.retry, Outcome.retry]  # back to the queue
    assert StuckOnce.calls == 1 and h.wedged
    later = handle(h, [reading("later")])
    assert [s.outcome for s in later] == [Outcome.retry]


def test_a_message_whose_id_is_already_stored_says_so_instead_of_claiming_its_prediction():
    # A batch's records are stored as "<id>-0", "<id>-1"; a later message may carry such
    # an id: the stored row is kept, and its job must not claim a prediction it lost
    batch = json.dumps(
        {
            "message_id": "b2",
            "records": [
                {"timestamp": "2025-01-01T00:00:00Z", "features": dict.fromkeys(FEATURES, 1.0)},
                {"timestamp": "2025-01-01T00:01:00Z", "features": dict.fromkeys(FEATURES, 1.0)},
            ],
        }
    ).encode()
    qm, ml = FakeQueueManager(), FakeMlData()
    h = handler(qm, ml, FakeModels(model()))
    handle(h, [batch])
    settled = handle(h, [reading("b2-1", AH_data=5.0)])

    assert settled[0].outcome is Outcome.ack
    job = qm.jobs["b2-1"]
    assert job["result"] == []
    assert "already stored, kept as it was: b2-1" in job["message"]
    assert len(ml.rows) == 2
