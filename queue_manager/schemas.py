"""Request and response bodies of queue_manager that no other service sends or reads.
The shapes it shares (algorithms, services, jobs) live in gits_common.registry and
gits_common.jobs."""

from __future__ import annotations

from pydantic import BaseModel, Field, Json

from gits_common.registry import Name, Sha256, Text
from gits_common.rules import StorableText
from gits_common.schemas import ColumnName, Task, UseCaseName


class AlgorithmCreate(BaseModel):
    """The form fields sent with a model file. The features a model reads come from the
    model itself; a list given here is only checked against them (in any order)."""

    name: Name
    use_case: UseCaseName
    task: Task
    features: Json[list[ColumnName] | None] = Field(
        default=None,
        description='Optional JSON array of the feature names, e.g. ["temp_A", "humidity"]: '
        "checked against the model's own features, whose order is used",
    )
    target: ColumnName | None = None
    description: StorableText | None = Field(default=None, max_length=2000)
    uploaded_by: Text = "api"
    sha256: Sha256 | None = Field(
        default=None, description="When given, the upload is refused unless the file matches"
    )


class Health(BaseModel):
    """Service and store state."""

    status: str
    store: str = Field(
        description="postgresql, mongodb or mongomock (test double); 'unavailable: ...' "
        "when it does not answer"
    )
