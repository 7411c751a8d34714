"""Wire shapes of the model registry that queue_manager owns: algorithm versions (model
files), services (which version a service's workers use) and the label that names a
model version in production rows and jobs. Every service and the admin read these
shapes from here; queue_manager answers with them and the clients return them."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints

from gits_common.rules import StorableText, UtcTime, storable_text
from gits_common.schemas import Task

# Algorithm and service names become file names, RabbitMQ queue names and URL path
# segments, so they are plain: a letter or digit, then letters, digits, _ . -
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
NAME_RULE: Final = (
    "1 to 100 characters: letters, digits, '_', '.' and '-', starting with a letter or digit"
)
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{64}$", to_lower=True)]
# Free text a person types (who uploaded, a use case name as given): bounded, never empty,
# and storable (no NUL, no lone surrogate).
Text = Annotated[StorableText, StringConstraints(min_length=1, max_length=200)]


def routing_key(value: str) -> str:
    """The key unchanged, or ValueError: AMQP 0-9-1 carries a routing key as a shortstr
    of at most 255 bytes (UTF-8: 200 accented letters are 400 bytes), and GITS keeps
    control characters (NUL included) out of it."""
    if len(value.encode("utf-8", errors="surrogatepass")) > 255:
        raise ValueError("a routing key holds at most 255 bytes of UTF-8")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a routing key may not hold control characters")
    return storable_text(value)


RoutingKey = Annotated[str, StringConstraints(min_length=1), AfterValidator(routing_key)]
LATEST: Final = "latest"


def _version(value: Any) -> Any:
    """Versions arrive as numbers or, in paths and forms, as text."""
    if value == LATEST:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**31:
        return value
    raise ValueError(f"a version is a positive integer or {LATEST!r}, not {value!r}")


# A version number, or "latest": whichever version of the name is newest at the time.
VersionRef = Annotated[
    Annotated[int, Field(ge=1, lt=2**31)] | Literal["latest"], BeforeValidator(_version)
]


def model_label(algorithm: str, version: int) -> str:
    """How production rows and jobs name a model version: `<algorithm>:<version>`."""
    return f"{algorithm}:{version}"


def parse_model_label(label: str) -> tuple[str, int]:
    """`<algorithm>:<version>` as (algorithm, version); ValueError when it is not one."""
    name, _, version = label.rpartition(":")
    if not name or not version.isdigit():
        raise ValueError(f"model label {label!r} is not '<algorithm>:<version>'")
    return name, int(version)


class ModelCheck(BaseModel):
    """What queue_manager's validation found when a model file was uploaded: the
    features the model itself reads (in its own order), what it predicts, and on how
    many rows of which kind it was tried."""

    features: list[str]
    output: str = Field(description="e.g. 'numbers' or 'labels [0, 1]'")
    rows: int = Field(description="rows the model predicted during the check")
    rows_from: str = Field(description="'training' (the use case's table) or 'schema'")
    seconds: float


class AlgorithmRead(BaseModel):
    """One stored version of a model file."""

    name: str
    version: int
    use_case: str
    task: Task
    features: list[str] = Field(description="The features the model reads, in its order")
    target: str | None
    description: str | None
    sha256: str
    size: int
    filename: str
    uploaded_by: str
    uploaded_at: UtcTime
    check: ModelCheck | None = Field(
        default=None, description="The upload validation's findings (None before it existed)"
    )
    services: list[str] = Field(description="Services whose workers use this version now")

    @property
    def label(self) -> str:
        """`<name>:<version>`."""
        return model_label(self.name, self.version)


class ServiceCreate(BaseModel):
    """The body of PUT /services/{name}: creates the service or rebinds it."""

    routing_key: RoutingKey
    use_case: Text | None = Field(
        default=None, description="Defaults to the algorithm's; must match it when given"
    )
    algorithm_name: Name
    algorithm_version: VersionRef = LATEST
    updated_by: Text | None = None


class NamedServiceCreate(ServiceCreate):
    """The body of POST /services: creates a service, never rebinds one."""

    name: Name


class ModelStatusReport(BaseModel):
    """A worker's word on the model version it was given: whether it loads and
    predicts. A version that does not is shown as unusable on its service."""

    algorithm_name: Name
    version: Annotated[int, Field(ge=1, lt=2**31)]
    usable: bool
    reason: Annotated[StorableText, StringConstraints(max_length=2000)] | None = None
    worker: Text


class ModelStatus(ModelStatusReport):
    """The newest report on a service's model version, and when it came."""

    reported_at: UtcTime


class ServiceRead(BaseModel):
    """A service, the algorithm version it is bound to, and what that resolves to now."""

    name: str
    routing_key: str
    use_case: str
    algorithm_name: str
    algorithm_version: int | Literal["latest"]
    resolved_version: int | None = Field(description="None only if the version is gone")
    sha256: str | None
    features: list[str]
    updated_at: UtcTime
    updated_by: str | None
    model_status: ModelStatus | None = Field(
        default=None,
        description="The workers' newest report on the resolved version: usable or not, "
        "and why (None until a worker reported)",
    )
    announced: bool = Field(
        default=False,
        description="On PUT: whether RabbitMQ took the queue and the model-change event",
    )

    @property
    def model_label(self) -> str | None:
        """`<algorithm>:<resolved version>`, None when the version is gone."""
        if self.resolved_version is None:
            return None
        return model_label(self.algorithm_name, self.resolved_version)
