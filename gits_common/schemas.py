"""Wire schemas shared between services: the use case and its columns."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from gits_common.rules import MESSAGE_ID_MAX_CHARS, MessageId, RowTime, StorableText

# Column names become SQL identifiers (always quoted) and DataFrame columns.
COLUMN_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
COLUMN_NAME_RULE = (
    "a letter, then up to 62 letters, digits or '_' (no spaces, dots or dashes), "
    "distinct ignoring case"
)
ColumnName = Annotated[str, StringConstraints(pattern=COLUMN_NAME_PATTERN)]
# Use case names become table-name prefixes ("<name>_production"), so they are shorter.
USE_CASE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
USE_CASE_NAME_RULE = "a lowercase letter, then up to 39 lowercase letters, digits or '_'"
UseCaseName = Annotated[str, StringConstraints(pattern=USE_CASE_NAME_PATTERN)]
# A column's name in a user's files, where it differs from the column's (`gits use-case
# create --normalize-names`): any header text a CSV may hold.
SourceName = Annotated[StorableText, StringConstraints(min_length=1, max_length=200)]


# Columns every table has or the platform adds; a use case may not claim them.
RESERVED_COLUMNS = frozenset(
    {"message_id", "inserted_at", "prediction", "prediction_score", "model_version"}
)


class Task(StrEnum):
    """What a use case's models do."""

    regression = "regression"
    classification = "classification"
    anomaly = "anomaly"


class ColumnType(StrEnum):
    """The value types a feature or target column may hold."""

    float = "float"
    int = "int"
    bool = "bool"
    text = "text"


class Table(StrEnum):
    """The three tables every use case has."""

    training = "training"
    testing = "testing"
    production = "production"


class Column(BaseModel):
    """A named, typed column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ColumnName
    type: ColumnType = ColumnType.float


class UseCase(BaseModel):
    """A prediction problem: its features, target and time column. Data, never code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: UseCaseName
    task: Task
    features: list[Column] = Field(min_length=1, max_length=500)
    target: Column | None = None
    time_column: ColumnName = "timestamp"
    description: StorableText = ""
    source_names: dict[ColumnName, SourceName] = Field(
        default_factory=dict,
        max_length=502,
        description="A column's name in the user's files, where it differs: "
        "{column: name in the file}. Files with those names load as these columns.",
    )

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> Self:
        names = [c.name for c in self.features] + [self.time_column]
        if self.target is not None:
            names.append(self.target.name)
        lowered = [n.lower() for n in names]
        duplicates = sorted({n for n in names if lowered.count(n.lower()) > 1})
        if duplicates:
            raise ValueError(f"column names must be distinct (ignoring case): {duplicates}")
        reserved = sorted(n for n in names if n.lower() in RESERVED_COLUMNS)
        if reserved:
            raise ValueError(f"column names reserved by GITS: {reserved}")
        unknown = sorted(set(self.source_names) - set(names))
        if unknown:
            raise ValueError(f"source_names names columns the use case does not have: {unknown}")
        sources = list(self.source_names.values())
        if len(set(sources)) < len(sources):
            raise ValueError("source_names maps two columns from the same name in the file")
        if self.target is None and self.task is not Task.anomaly:
            raise ValueError(f"a {self.task.value} use case needs a target column")
        numbers = (ColumnType.float, ColumnType.int)
        target = self.target
        if self.task is Task.regression and target is not None and target.type not in numbers:
            raise ValueError(
                f"a regression target is a number (float or int), not {target.type.value}"
            )
        verdicts = (ColumnType.int, ColumnType.bool)
        if self.task is Task.anomaly and target is not None and target.type not in verdicts:
            raise ValueError(
                "an anomaly target is the known verdict of a row, 0/1 (int) or true/false "
                f"(bool) with 1 or true for an anomaly, not {target.type.value}"
            )
        return self

    @property
    def feature_names(self) -> list[str]:
        """The feature columns' names, in order."""
        return [c.name for c in self.features]


class SensorRecord(BaseModel):
    """One reading inside a batch message."""

    message_id: MessageId | None = None
    timestamp: RowTime
    features: dict[str, Any]


class SensorMessage(BaseModel):
    """A message on the sensor exchange: one reading (`timestamp` and `features`), or a
    batch of readings in `records`, each stored as its own production row."""

    message_id: MessageId
    timestamp: RowTime | None = None
    features: dict[str, Any] | None = None
    records: list[SensorRecord] | None = Field(default=None, min_length=1, max_length=10_000)
    routing_key: str | None = None
    use_case: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.features is None) == (self.records is None):
            raise ValueError("give either 'features' (one reading) or 'records' (a batch)")
        if self.features is not None and self.timestamp is None:
            raise ValueError("a single reading needs its 'timestamp'")
        unnamed = [i for i, r in enumerate(self.records or []) if r.message_id is None]
        if unnamed and len(f"{self.message_id}-{unnamed[-1]}") > MESSAGE_ID_MAX_CHARS:
            raise ValueError(
                f"records without a message_id get '<message_id>-<i>', which must not be "
                f"longer than {MESSAGE_ID_MAX_CHARS} characters: shorten the message_id"
            )
        return self

    def readings(self) -> list[SensorRecord]:
        """Every reading, each with its own message id (`<message_id>-<i>` in a batch
        when the record names none)."""
        if self.records is None:
            assert self.timestamp is not None  # the validator demands it
            return [
                SensorRecord(
                    message_id=self.message_id,
                    timestamp=self.timestamp,
                    features=self.features or {},
                )
            ]
        return [
            r if r.message_id else r.model_copy(update={"message_id": f"{self.message_id}-{i}"})
            for i, r in enumerate(self.records)
        ]
