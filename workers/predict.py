"""Turning readings into what a model scores: plain functions over records, so a test
can call them without a broker."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import ValidationError

from gits_common.schemas import SensorRecord
from gits_common.values import problems
from workers.models import LoadedModel


class Poison(Exception):
    """A message that can never succeed; the reason goes on its job."""


def typed_features(model: LoadedModel, readings: list[SensorRecord]) -> list[dict[str, Any]]:
    """The readings' use-case features, typed: one dict a reading, keyed in the use case's
    feature order; features the use case does not know are dropped. `Poison` names the
    missing or mistyped feature."""
    try:
        typed = model.validator.validate_python([r.features for r in readings])
    except ValidationError as exc:
        reasons = "; ".join(p["reason"].replace("column", "feature") for p in problems(exc)[:3])
        raise Poison(f"invalid features for {model.label}: {reasons}") from None
    names = model.use_case.feature_names
    return [{name: row.get(name) for name in names} for row in typed]


def features_frame(model: LoadedModel, features: list[dict[str, Any]]) -> pd.DataFrame:
    """One frame of typed features (`typed_features` of one or many messages), a row
    each, its columns the use case's features: what the model is called with."""
    return pd.DataFrame(features, columns=model.use_case.feature_names)
