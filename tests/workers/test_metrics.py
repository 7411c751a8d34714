"""A worker replica serves its metrics on WORKER_METRICS_PORT: scraped before and after
messages, the counters say what became of them (stored, dead-lettered and why), how they
were batched and timed, and which model version predicted, without a message id."""

from __future__ import annotations

import json

import pytest
from prometheus_client import generate_latest

from gits_ml.demo import PRODUCT_QUALITY
from tests.amqp_helpers import publish, wait_until
from tests.conftest import free_port
from tests.metrics_helpers import Samples, labels_of, moved, parse, scrape, value
from tests.workers.conftest import demo_messages
from tests.workers.test_handler import (
    FakeMlData,
    FakeModels,
    FakeQueueManager,
    handle,
    handler,
    model,
    reading,
)
from workers.metrics import DeadLetterKind

MESSAGES = "gits_worker_messages_total"


def test_the_counters_move_with_the_messages_a_worker_settles(platform):
    # Given a worker serving its metrics on a port of its own, logging JSON lines
    port = free_port()
    worker = platform.start_worker(WORKER_METRICS_PORT=str(port), LOG_FORMAT="json")
    url = f"http://127.0.0.1:{port}/metrics"
    before = scrape(url, timeout=90)

    # When 20 good messages and one that is no sensor message are published
    good = demo_messages(20, prefix="metrics-")
    bad = {"message_id": "not-a-reading", "hello": "world"}
    publish(platform.amqp_url, platform.routing_key, [*good, bad])

    # Then the counters moved by what became of each
    after = wait_until(lambda: settled(url, before, 21), timeout=60)
    assert moved(before, after, MESSAGES, outcome="stored") == 20
    assert moved(before, after, MESSAGES, outcome="dead_lettered") == 1
    assert moved(before, after, "gits_worker_dead_letters_total", reason="bad_message") == 1
    assert moved(before, after, "gits_worker_dead_letters_total") == 1
    assert moved(before, after, "gits_worker_predictions_total") == 20
    assert moved(before, after, "gits_worker_batch_size_messages_sum") == 21
    assert moved(before, after, "gits_worker_job_seconds_count") == 21
    assert moved(before, after, "gits_worker_predict_seconds_count") >= 1
    assert moved(before, after, "gits_worker_store_seconds_count") >= 1
    # And the model in use is a label of an info gauge
    (model,) = labels_of(after, "gits_worker_model_info")
    assert model == {
        "service": platform.service,
        "use_case": platform.use_case.name,
        "version": f"{platform.use_case.name}:1",
    }
    assert value(after, "gits_worker_model_info") == 1
    # And every series is the service's, and none names a message
    ours = [dict(held) for name, held in after if name.startswith("gits_")]
    assert {s["service"] for s in ours} == {platform.service}
    assert not [s for s in ours if any("metrics-" in v for v in s.values())]
    # And the log says why that message was dead-lettered, on a line naming it
    lines = [json.loads(line) for line in platform.log_of(worker).splitlines()]
    (dead,) = [line for line in lines if line.get("message_id") == "not-a-reading"]
    assert dead["service"] == "workers" and dead["worker"] and dead["level"] == "WARNING"
    assert dead["message"].startswith("dead-lettered message not-a-reading: ")


def settled(url: str, before: Samples, count: int) -> Samples | None:
    """A scrape once `count` messages more were settled, else None."""
    now = scrape(url)
    return now if moved(before, now, MESSAGES) >= count else None


@pytest.mark.parametrize(
    ("body", "ml", "models", "kind"),
    [
        (b"hello", FakeMlData(), FakeModels(model()), DeadLetterKind.bad_message),
        (reading("a"), FakeMlData(), FakeModels(None), DeadLetterKind.no_model),
        (reading("a", AH_data=-1.0), FakeMlData(), FakeModels(model()), DeadLetterKind.refused),
        (reading("a"), FakeMlData(down=99), FakeModels(model()), DeadLetterKind.unavailable),
    ],
    ids=["not-json", "no-model", "refused", "outage"],
)
def test_a_dead_letter_says_its_kind_of_reason(body, ml, models, kind):
    (settled,) = handle(handler(FakeQueueManager(), ml, models), [body])

    assert settled.kind is kind


def test_the_handler_times_the_model_and_the_store_and_counts_retries():
    # Given ml_data_api out of reach for its first call
    h = handler(FakeQueueManager(), FakeMlData(down=1), FakeModels(model()))

    handle(h, [reading(f"m{i}") for i in range(3)])

    samples = parse(generate_latest(h.metrics.registry).decode())
    assert value(samples, "gits_worker_predictions_total", service="svc") == 3
    assert value(samples, "gits_worker_retries_total", service="svc") == 1
    assert value(samples, "gits_worker_predict_seconds_count") == 1
    assert value(samples, "gits_worker_store_seconds_count") == 2  # the refused try, then one
    assert labels_of(samples, "gits_worker_model_info") == [
        {"service": "svc", "use_case": PRODUCT_QUALITY.name, "version": "pq:1"}
    ]
