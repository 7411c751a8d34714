"""A broker message read once: its id, what its job keeps of it, and its readings or the
reason it can never be scored. Plain functions over bytes, so a test can call them
without a broker."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from gits_common.rules import MessageId
from gits_common.schemas import SensorMessage, SensorRecord
from gits_common.values import json_value

# What a job keeps of a message: the whole message when it is small, else its start.
PAYLOAD_MAX_BYTES = 16 * 1024
PAYLOAD_HEAD_CHARS = 2000
_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)


@dataclass
class Message:
    """One delivery as the worker understands it. `reason` is set when it can never
    succeed (it is then dead-lettered with that reason)."""

    job_id: str
    payload: dict[str, Any]
    readings: list[SensorRecord] = field(default_factory=list)
    reason: str | None = None


def read_message(body: bytes, amqp_message_id: str | None, *, max_bytes: int) -> Message:
    """Parse a message body once. Its job id is the message's own `message_id` when it
    is a valid one, else the AMQP property's, else a digest of the body (so a redelivery
    maps to the same job); its payload is bounded and storable whatever the body holds."""
    if len(body) > max_bytes:
        return Message(
            job_id=_job_id(None, amqp_message_id, body),
            payload=_head(body),
            reason=f"message of {len(body)} bytes is over the limit of {max_bytes} "
            "(WORKER_MAX_MESSAGE_BYTES)",
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return Message(
            job_id=_job_id(None, amqp_message_id, body),
            payload=_head(body),
            reason=f"message is not JSON: {exc}",
        )
    except RecursionError:  # arrays in arrays, thousands deep: no sensor message
        return Message(
            job_id=_job_id(None, amqp_message_id, body),
            payload=_head(body),
            reason="message nests arrays or objects too deep to be read",
        )
    own_id = document.get("message_id") if isinstance(document, dict) else None
    message = Message(
        job_id=_job_id(own_id, amqp_message_id, body), payload=_payload(document, body)
    )
    try:
        message.readings = SensorMessage.model_validate(document).readings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "message"
        message.reason = f"not a sensor message: {where}: {first['msg']}"
    return message


def _job_id(own: Any, amqp_message_id: str | None, body: bytes) -> str:
    for candidate in (own, amqp_message_id):
        try:
            return _MESSAGE_ID.validate_python(candidate)
        except ValidationError:
            continue
    return f"unidentified-{hashlib.sha256(body).hexdigest()[:16]}"


def _payload(document: Any, body: bytes) -> dict[str, Any]:
    """The message itself when it is a small JSON object a store can keep, else its head."""
    if isinstance(document, dict):
        try:
            return dict(json_value(document, max_bytes=PAYLOAD_MAX_BYTES))
        except ValueError:
            pass  # NaN, a NUL, a '$' key, too big: keep the start of the text instead
    return _head(body)


def _head(body: bytes) -> dict[str, Any]:
    text = body[:PAYLOAD_HEAD_CHARS].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return {"raw": text, "bytes": len(body), "truncated": len(body) > PAYLOAD_HEAD_CHARS}
