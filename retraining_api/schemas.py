"""Request and response bodies of retraining_api."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gits_common.registry import Name
from gits_common.rules import BigInt, Flag, Float
from gits_common.schemas import Table, UseCaseName

# Free text a person types (who asks, a model id, a metric name): 1 to 200 characters,
# none of them a control character (PostgreSQL text and jsonb cannot hold NUL).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
# Job ids are PostgreSQL bigserials; a larger number would make the query fail, not miss.
MAX_JOB_ID = 2**63 - 1
JobId = Annotated[int, Field(ge=1, le=MAX_JOB_ID)]
# queue_manager's version numbers (gits_common.registry: 1 <= version < 2**31).
Version = Annotated[int, Field(ge=1, lt=2**31)]


class JobKind(StrEnum):
    """What a job builds."""

    retraining = "retraining"
    explainer = "explainer"


class JobStatus(StrEnum):
    """Where a job is in its life."""

    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"


ACTIVE = (JobStatus.queued, JobStatus.running)


class Ensemble(StrEnum):
    """How a retraining combines models (PyCaret): `blend` votes (blend_models) and
    `stack` learns a meta-model (stack_models) over the best compared models; `bagging`
    and `boosting` build one of the best model (ensemble_model)."""

    blend = "blend"
    stack = "stack"
    bagging = "bagging"
    boosting = "boosting"


class TuneCreate(BaseModel):
    """A hyperparameter search of the best compared model: PyCaret's tune_model with
    Optuna (TPE), keeping the untuned model when tuning does not improve it."""

    model_config = ConfigDict(extra="forbid")

    trials: BigInt = Field(default=20, ge=1, le=500, description="At most this many trials")
    time_budget_seconds: Float = Field(
        default=120, gt=0, le=24 * 3600, description="Stop the search after this many seconds"
    )
    early_stopping_trials: BigInt = Field(
        default=10,
        ge=1,
        le=500,
        description="Stop after this many trials in a row without a better score",
    )


class RetrainingCreate(BaseModel):
    """A retraining job: train a challenger on the use case's training table and compare
    it with the model its service uses now, on the same held-out rows."""

    model_config = ConfigDict(extra="forbid")

    use_case: UseCaseName
    service: Name | None = Field(
        default=None,
        description="The service whose model is the champion; defaults to the "
        "use case's only service",
    )
    models: list[Text] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="PyCaret model ids to compare, e.g. ['lr', 'rf']",
    )
    metric: Text | None = Field(
        default=None,
        description="The metric to select and compare on, e.g. 'MAE'; by default R2 "
        "(regression), Accuracy (classification), F1 (anomaly)",
    )
    tune: TuneCreate | None = Field(
        default=None,
        description="Tune the best model's hyperparameters (regression, classification)",
    )
    ensemble: Ensemble | None = Field(
        default=None,
        description="Combine the best models (regression, classification); blend and stack "
        "need at least 2 models",
    )
    fix_imbalance: Flag = Field(
        default=False,
        description="Balance the classes with SMOTE (imbalanced-learn) on the training "
        "folds (classification only)",
    )
    time_budget_seconds: Float | None = Field(
        default=None, gt=0, le=24 * 3600, description="Stop comparing models after this long"
    )
    auto_promote: Flag = Field(
        default=False, description="Promote when the challenger beats the champion by the margin"
    )
    promote_margin: Float | None = Field(
        default=None, ge=0, le=1, description="Relative improvement needed to auto-promote"
    )
    requested_by: Text = "api"


class ExplainerCreate(BaseModel):
    """An explainer dashboard for a stored model version or a retraining job's challenger."""

    model_config = ConfigDict(extra="forbid")

    model_name: Name | None = None
    model_version: Version | Literal["latest"] = "latest"
    job_id: JobId | None = Field(
        default=None, description="Explain this retraining job's challenger"
    )
    data: Table = Table.production
    max_rows: BigInt | None = Field(default=None, ge=10, le=10_000)
    requested_by: Text = "api"

    @model_validator(mode="after")
    def _one_model(self) -> ExplainerCreate:
        if (self.model_name is None) == (self.job_id is None):
            raise ValueError("name either 'model_name' (and 'model_version') or 'job_id'")
        return self


class Actor(BaseModel):
    """Who asks for a promotion or a rollback."""

    requested_by: Text = "api"


class RegistrationCreate(Actor):
    """Register a job's challenger as a new algorithm version, binding nothing."""

    model_config = ConfigDict(extra="forbid")

    algorithm_name: Name | None = Field(
        default=None,
        description="The algorithm it becomes a version of; default: the job's service's "
        "algorithm, else one named after the use case",
    )


# The original's order of a result block; PostgreSQL's jsonb keeps keys in its own order.
RESULT_ORDER = (
    "id", "Model", "MAE", "MSE", "RMSE", "R2", "RMSLE", "MAPE",
    "Accuracy", "AUC", "Recall", "Prec.", "F1", "Kappa", "MCC", "Precision", "Threshold",
)  # fmt: skip
RESULT_BLOCKS = ("retrained_model_results", "previous_model_results")


def _in_order(block: dict[str, Any]) -> dict[str, Any]:
    rank = {key: i for i, key in enumerate(RESULT_ORDER)}
    return dict(sorted(block.items(), key=lambda item: rank.get(item[0], len(rank))))


class JobRead(BaseModel):
    """A retraining or explainer job as stored."""

    id: int
    kind: JobKind
    use_case: str
    service: str | None
    status: JobStatus
    stage: str
    percent: int
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @field_validator("result")
    @classmethod
    def _original_order(cls, result: dict[str, Any] | None) -> dict[str, Any] | None:
        if not result:
            return result
        ordered = {k: _in_order(v) if k in RESULT_BLOCKS and v else v for k, v in result.items()}
        if result.get("leaderboard"):
            ordered["leaderboard"] = [_in_order(row) for row in result["leaderboard"]]
        return ordered


class PromotionRead(BaseModel):
    """A promotion or rollback: the service's model before and after, who, when, why."""

    id: int
    action: Literal["promote", "rollback"]
    service: str
    use_case: str
    from_version: str | None
    to_version: str
    job_id: int | None
    requested_by: str
    at: datetime
    metrics: dict[str, Any] | None
