"""Wire shapes of monitoring_api: report kinds, thresholds, the metric history and its
alerts, and the names of the history's drift metrics. monitoring_api answers with them;
the admin's dashboards and retraining_api's drift policy read them from here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from gits_common.rules import Float

# The history's drift metrics: the share of drifted features, and one series a feature,
# named by what it holds so that each keeps one meaning: its distance (normed
# Wasserstein or Jensen-Shannon; what `feature_drift_score` thresholds), or, on a window
# too small for the distance, its test's p-value.
DRIFT_SHARE: Final = "drift_share"
DRIFT_SCORE: Final = "drift_score"
DRIFT_P_VALUE: Final = "drift_p_value"
DRIFT_METRICS = frozenset({DRIFT_SHARE, DRIFT_SCORE, DRIFT_P_VALUE})


class ReportKind(StrEnum):
    """What a report compares between the production window and the reference."""

    data_quality = "data_quality"
    data_drift = "data_drift"
    target_drift = "target_drift"
    prediction_drift = "prediction_drift"
    model_performance = "model_performance"


class Reference(StrEnum):
    """The table a report compares production with."""

    training = "training"
    testing = "testing"


class ReportFormat(StrEnum):
    """A compact JSON summary, or Evidently's self-contained HTML page."""

    json = "json"
    html = "html"


class Thresholds(BaseModel):
    """When a history point raises an alert; null turns a check off."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    drift_share: Float | None = Field(
        default=0.5, ge=0, le=1, description="alert when this share of features or more drift"
    )
    feature_drift_score: Float | None = Field(
        default=None,
        ge=0,
        description="alert for each feature whose drift distance (the history's drift_score: "
        "normed Wasserstein or Jensen-Shannon) is at or above it; a point on a window too "
        "small for distances records p-values (drift_p_value) instead, which it does not judge",
    )
    performance_drop: Float | None = Field(
        default=None,
        gt=0,
        description="alert when realised MAE is this much worse (relative) than the model's "
        "MAE on the training table, or realised accuracy this much lower",
    )
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="every new alert is POSTed here as JSON"
    )

    def drift_crossings(
        self, values: Iterable[tuple[str, str | None, float]]
    ) -> list[tuple[str, str | None, float, float]]:
        """The drift values of one history point at or above their threshold, as
        (metric, feature, value, threshold): the drift share against `drift_share`, each
        feature's distance against `feature_drift_score` (at the threshold counts, as in
        Evidently). `values` are a point's (metric, feature or None, value)."""
        limit_of = {DRIFT_SHARE: self.drift_share, DRIFT_SCORE: self.feature_drift_score}
        return [
            (metric, feature, value, limit)
            for metric, feature, value in values
            if (limit := limit_of.get(metric)) is not None and value >= limit
        ]


def _without_defaults(schema: dict[str, Any]) -> None:
    """Drop the fields' defaults from a JSON schema: in a change, a field left out keeps
    its stored value rather than taking a default."""
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class ThresholdsUpdate(Thresholds):
    """A change of thresholds: each field given replaces the stored value, a field left
    out keeps it, and null turns its check off (webhook_url: no webhook)."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra=_without_defaults
    )


class MetricRead(BaseModel):
    """One value of the metric history: a drift share, a feature's drift score, or a
    realised performance metric."""

    time: datetime
    metric: str
    feature: str | None
    value: float


class HistoryRead(BaseModel):
    """A use case's metric history, oldest first."""

    use_case: str
    values: list[MetricRead]
    reason: str | None = Field(
        default=None,
        description="why there is no value, from the use case's row counts and the "
        "monitoring settings; null when there are values",
    )


Delivery = Literal["none", "pending", "delivered", "failed"]


class AlertRead(BaseModel):
    """A threshold crossing, and whether its webhook took it."""

    id: int
    use_case: str
    time: datetime
    metric: str
    feature: str | None
    value: float
    threshold: float = Field(description="the value the metric crossed")
    delivery: Delivery
    delivery_detail: str | None


class PointRead(BaseModel):
    """One history point: the window it looked at, its values and the alerts it raised."""

    use_case: str
    time: datetime
    rows: int
    labelled_rows: int
    window_start: str
    window_end: str
    values: list[MetricRead]
    alerts: list[AlertRead]
