"""Request and response bodies of monitoring_api."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field


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

    drift_share: float | None = Field(
        default=0.5, ge=0, le=1, description="alert when this share of features or more drift"
    )
    feature_drift_score: float | None = Field(
        default=None, ge=0, description="alert for each feature whose drift score is above it"
    )
    performance_drop: float | None = Field(
        default=None,
        gt=0,
        description="alert when realised MAE is this much worse (relative) than the model's "
        "MAE on the training table, or realised accuracy this much lower",
    )
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="every new alert is POSTed here as JSON"
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
