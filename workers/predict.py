"""Turning a message into predictions: plain functions over bytes and DataFrames, so a
test can call them without a broker."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from gits_common.schemas import SensorMessage, SensorRecord, Task
from gits_common.values import problems
from workers.models import LoadedModel


class Poison(Exception):
    """A message that can never succeed; the reason goes on its job."""


def job_id(body: bytes, amqp_message_id: str | None) -> str:
    """The message's id: from its JSON, else the AMQP property, else its digest (so a
    redelivered unreadable message maps to the same job)."""
    try:
        found = json.loads(body).get("message_id")
        if isinstance(found, str) and found:
            return found
    except (ValueError, AttributeError):
        pass
    return amqp_message_id or f"unidentified-{hashlib.sha256(body).hexdigest()[:16]}"


def payload(body: bytes) -> dict[str, Any]:
    """What the job records of the message: its JSON object, or the start of its text."""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            return parsed
    except ValueError:
        pass
    return {"raw": body[:2000].decode("utf-8", errors="replace")}


def parse(body: bytes) -> SensorMessage:
    """The message, or `Poison` saying why it cannot be one."""
    try:
        return SensorMessage.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise Poison(f"message is not JSON: {first['msg']}") from None
        where = ".".join(map(str, first["loc"])) or "message"
        raise Poison(f"not a sensor message: {where}: {first['msg']}") from None


def features_frame(model: LoadedModel, readings: list[SensorRecord]) -> pd.DataFrame:
    """The readings' use-case features, typed, or `Poison` naming the missing or
    mistyped feature. Features the use case does not know are dropped."""
    try:
        typed = model.validator.validate_python([r.features for r in readings])
    except ValidationError as exc:
        reasons = "; ".join(p["reason"].replace("column", "feature") for p in problems(exc)[:3])
        raise Poison(f"invalid features for {model.label}: {reasons}") from None
    return pd.DataFrame(typed, columns=model.use_case.feature_names)


def predict(model: LoadedModel, frame: pd.DataFrame) -> tuple[list[Any], list[float | None]]:
    """Predictions for every row, and for classifiers the probability of the predicted
    class. Calls the pipeline directly: PyCaret's predict_model costs ~130 ms a call."""
    inputs = frame[model.features]
    labels = model.pipeline.predict(inputs)
    scores: list[float | None] = [None] * len(frame)
    if model.use_case.task is Task.classification and hasattr(model.pipeline, "predict_proba"):
        scores = [float(p) for p in np.max(model.pipeline.predict_proba(inputs), axis=1)]
    return [_plain(v) for v in labels], scores


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON and psycopg2 expect."""
    return value.item() if isinstance(value, np.generic) else value
