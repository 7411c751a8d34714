"""The columns of a use case's three tables, derived from its definition alone."""

from __future__ import annotations

from dataclasses import dataclass

from gits_common.schemas import ColumnType, Table, UseCase
from gits_common.values import Kind


@dataclass(frozen=True)
class Field:
    """One column of a use-case table and whether every inserted row must fill it."""

    name: str
    kind: Kind
    required: bool


def table_name(use_case: str, table: Table) -> str:
    """The SQL table that holds one split of a use case."""
    return f"{use_case}_{table.value}"


def fields(use_case: UseCase, table: Table) -> list[Field]:
    """The insertable columns of a table, in storage order.

    Every table has an optional `message_id` (required in production, where it makes
    redelivered predictions a no-op), the time column, the features and the target.
    Production rows also carry the prediction, its score and the model version; their
    target stays empty until the ground truth arrives.
    """
    production = table is Table.production
    out = [
        Field("message_id", "message_id", required=production),
        Field(use_case.time_column, "time", required=True),
        *(Field(c.name, c.type, required=True) for c in use_case.features),
    ]
    if use_case.target is not None:
        out.append(Field(use_case.target.name, use_case.target.type, required=not production))
    if production:
        label = use_case.target.type if use_case.target is not None else ColumnType.int
        out += [
            Field("prediction", label, required=False),
            Field("prediction_score", ColumnType.float, required=False),
            Field("model_version", ColumnType.text, required=False),
        ]
    return out
