"""Request and response bodies of ml_data_api."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from gits_common.schemas import Table, UseCase, UseCaseName

# An empty batch is refused by the service, which says so ("empty batch"): stated in the
# document, checked there.
AT_LEAST_ONE: JsonDict = {"minItems": 1}


class UseCaseRead(BaseModel):
    """A registered use case, how its tables are stored, and their names."""

    use_case: UseCase
    storage: str = Field(description="'hypertable' (TimescaleDB) or 'table' (plain PostgreSQL)")
    tables: dict[Table, str]


class RowsCreate(BaseModel):
    """Rows to insert: one row or thousands, all or nothing."""

    rows: list[dict[str, Any]] = Field(
        json_schema_extra=AT_LEAST_ONE,
        description="Objects keyed by column: time column, features, target; production "
        "rows also message_id, prediction, prediction_score, model_version",
    )


class InsertResult(BaseModel):
    """How many rows were stored, and how many were already there (same message_id),
    with those message ids: the rows stored earlier under them are kept as they were."""

    inserted: int
    skipped: int
    skipped_ids: list[str] = Field(default_factory=list)


class RowsRead(BaseModel):
    """Rows in ascending time order."""

    use_case: str
    table: Table
    count: int
    rows: list[dict[str, Any]]


class LabelsCreate(BaseModel):
    """True labels for production rows, by message id."""

    labels: list[dict[str, Any]] = Field(
        json_schema_extra=AT_LEAST_ONE,
        description='Objects {"message_id": ..., "value": <the target\'s type>}',
    )


class LabelResult(BaseModel):
    """How many production rows got their label and how many training rows that added;
    message ids with no production row (the first 100)."""

    labelled: int
    added_to_training: int
    unknown: list[str]


class DeleteResult(BaseModel):
    """How many rows a delete removed."""

    deleted: int


class UseCaseDeleted(BaseModel):
    """A deleted use case and the tables that went with it."""

    name: str
    tables: list[str] = Field(description="The tables dropped, with all their rows")


class LegacyInsert(BaseModel):
    """The original GITS body for POST /ml_data_api/insert_data/."""

    model_config = ConfigDict(populate_by_name=True)

    table_name: Table = Field(alias="table")
    data: dict[str, Any] | list[dict[str, Any]]
    use_case: UseCaseName | None = Field(
        default=None, description="Defaults to ML_DATA_API_DEFAULT_USE_CASE"
    )
