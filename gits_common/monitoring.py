"""Wire shapes of monitoring_api: report kinds, thresholds, the metric history and its
alerts, and the names of the history's drift metrics. monitoring_api answers with them;
the admin's dashboards and retraining_api's drift policy read them from here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from gits_common.rules import Float, StorableText

# The history's drift metrics: the share of drifted features, and one series a feature,
# named by what it holds so that each keeps one meaning: its distance (normed
# Wasserstein or Jensen-Shannon; what `feature_drift_score` thresholds), or, on a window
# too small for the distance, its test's p-value.
DRIFT_SHARE: Final = "drift_share"
DRIFT_SCORE: Final = "drift_score"
DRIFT_P_VALUE: Final = "drift_p_value"
DRIFT_METRICS = frozenset({DRIFT_SHARE, DRIFT_SCORE, DRIFT_P_VALUE})
# The share of an anomaly use case's predictions in a history point's window that flag
# an anomaly (0..1); what `anomaly_rate` thresholds.
ANOMALY_RATE: Final = "anomaly_rate"


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
        "MAE on the training table, or realised accuracy (classification) or F1 of the "
        "anomaly flags (anomaly) this much lower",
    )
    anomaly_rate: Float | None = Field(
        default=0.1,
        ge=0,
        le=1,
        description="anomaly use cases: alert when the share of flagged rows in a history "
        "point's window is above it",
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

    def rate_crossings(
        self, values: Iterable[tuple[str, str | None, float]]
    ) -> list[tuple[str, str | None, float, float]]:
        """The anomaly rate of one history point when it is above `anomaly_rate`, as
        (metric, None, value, threshold); above, not at: a model flags about its
        contamination share of normal rows, which is the limit an operator sets."""
        limit = self.anomaly_rate
        return [
            (metric, feature, value, limit)
            for metric, feature, value in values
            if metric == ANOMALY_RATE and feature is None and limit is not None and value > limit
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
    window_start: str | None = Field(
        None, description="the time of the first production row the point judged"
    )
    window_end: str | None = Field(
        None, description="the time of the last production row the point judged"
    )
    acknowledged_by: str | None = Field(None, description="who acknowledged it; null: open")
    acknowledged_at: datetime | None = None


class AlertAcknowledge(BaseModel):
    """Who acknowledges an alert (an operator's user name)."""

    by: StorableText = Field(min_length=1, max_length=150)


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


class ModelRead(BaseModel):
    """The model an answer used: the one a service of the use case is bound to, or why
    there is none."""

    name: str | None = Field(description="`<algorithm>:<version>`, null when none could be had")
    reason: str | None = None


class ClassRead(BaseModel):
    """One class's realised precision, recall and F1 (one-vs-rest) and its true count."""

    label: Any
    precision: float
    recall: float
    f1: float
    support: int = Field(description="labelled rows of the window whose true class it is")


class ConfusionRead(BaseModel):
    """A confusion matrix: counts[i][j] rows of true class labels[i] predicted labels[j]."""

    labels: list[Any]
    counts: list[list[float]]


class ProbabilityDriftRead(BaseModel):
    """Drift of the predicted probabilities: the window's against the model's on the
    reference rows, by the method drift.choose picks for numbers."""

    column: str = Field(description="positive_probability (binary) or confidence")
    score: float
    drifted: bool
    method: str
    kind: str
    threshold: float
    current_mean: float
    reference_mean: float
    current_rows: int
    reference_rows: int


class ClassificationRead(BaseModel):
    """Realised classification performance on a window's labelled production rows."""

    use_case: str
    window: dict[str, Any]
    rows: int
    labelled_rows: int
    classes: list[Any]
    positive_class: Any | None = Field(
        description="binary: the minority class of the reference table's target; null "
        "for multiclass"
    )
    accuracy: float | None
    precision: float | None = Field(description="macro over the classes")
    recall: float | None = Field(description="macro over the classes")
    f1: float | None = Field(description="macro over the classes")
    roc_auc: float | None
    roc_auc_reason: str | None = None
    per_class: list[ClassRead]
    confusion_matrix: ConfusionRead
    prediction_drift: ProbabilityDriftRead | None
    prediction_drift_reason: str | None = None
    model: ModelRead


class RateBucket(BaseModel):
    """The flagged share of one time bucket's predictions."""

    start: datetime
    end: datetime
    rows: int
    flagged: int
    rate: float


class AnomalyEvent(BaseModel):
    """Consecutive flagged rows, merged while less than `merge_seconds` apart."""

    start: datetime = Field(description="time of its first flagged row")
    end: datetime = Field(description="time of its last flagged row")
    rows: int = Field(description="flagged rows in it")
    max_score: float | None
    mean_score: float | None


class FlagQualityRead(BaseModel):
    """Realised precision, recall and F1 of the flags (anomaly = 1) on labelled rows."""

    rows: int
    anomalies: int = Field(description="labelled rows whose truth is 1")
    precision: float
    recall: float
    f1: float


class AnomaliesRead(BaseModel):
    """An anomaly use case's flags over a window: the rate per bucket and the events."""

    use_case: str
    window: dict[str, Any]
    model_version: str | None = Field(description="the model that made the newest row")
    threshold: float | None = Field(
        description="the bound model's score threshold: a row is flagged above it"
    )
    model: ModelRead
    bucket_seconds: int
    merge_seconds: float
    rows: int
    flagged: int
    anomaly_rate: float | None = Field(description="flagged / rows of the whole window")
    alert_threshold: float | None = Field(description="the use case's anomaly_rate threshold")
    alerting: bool = Field(description="anomaly_rate is above alert_threshold")
    rate: list[RateBucket]
    events: list[AnomalyEvent]
    realised: FlagQualityRead | None = Field(description="null when no row is labelled yet")


class EstimateBucket(BaseModel):
    """One time bucket's estimated metrics and, where labels came, realised ones."""

    start: datetime
    end: datetime
    rows: int
    labelled_rows: int
    estimated: dict[str, float | None]
    realised: dict[str, float | None] | None


class EstimatedRead(BaseModel):
    """Performance estimated from the model's outputs (CBPE, DLE) beside the realised."""

    use_case: str
    task: str
    method: Literal["CBPE", "DLE"] | None
    reason: str | None = Field(description="why there is no estimate, else null")
    metrics: list[str]
    window: dict[str, Any]
    bucket_seconds: int
    reference: dict[str, Any] | None = Field(
        description="the table the estimator was fitted on, its rows, and the model's "
        "realised metrics there"
    )
    estimated: dict[str, float | None] | None = Field(description="of the whole window")
    realised: dict[str, float | None] | None = Field(description="of the whole window")
    buckets: list[EstimateBucket]
    model: ModelRead
