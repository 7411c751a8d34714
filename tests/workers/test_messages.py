"""Any body a broker can carry is read without an exception: it gets a job id queue_manager
accepts and a payload it can store, and either readings or the reason it has none."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from gits_common.jobs import JobCreate
from gits_common.rules import MessageId
from workers.messages import read_message

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["\x00", "\ud800", "$set", "a.b", "x" * 300]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["$x", "a.b", "\x00"]), children, max_size=5
        )
    ),
    max_leaves=20,
)
NEAR_MESSAGES = st.fixed_dictionaries(
    {
        "message_id": JSON,
        "timestamp": st.sampled_from(
            ["2025-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", 5, None]
        ),
        "features": st.dictionaries(st.text(max_size=12), JSON, max_size=6) | JSON,
    }
)


def bodies() -> st.SearchStrategy[bytes]:
    encoded = (JSON | NEAR_MESSAGES).map(lambda d: json.dumps(d).encode(errors="surrogatepass"))
    return st.binary(max_size=300) | encoded


@settings(max_examples=400, deadline=None)
@given(body=bodies(), amqp_id=st.none() | st.text(max_size=300))
def test_any_body_gets_a_storable_job_and_readings_or_a_reason(body: bytes, amqp_id: str | None):
    message = read_message(body, amqp_id, max_bytes=10_000)

    TypeAdapter(MessageId).validate_python(message.job_id)
    JobCreate(
        message_id=message.job_id, service="s", payload=message.payload, worker="w"
    )  # what queue_manager would accept
    assert (message.reason is None) == bool(message.readings)
    assert message.reason is None or message.reason.strip()


def test_the_same_unreadable_body_maps_to_the_same_job():
    first = read_message(b"\xff\xfe not json", None, max_bytes=100)
    again = read_message(b"\xff\xfe not json", None, max_bytes=100)
    assert first.job_id == again.job_id
    assert first.job_id.startswith("unidentified-")
