"""Algorithms (model files and their versions) as queue_manager holds them, and the use
cases ml_data_api defines. Every read asks the owner; nothing is kept here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from django_admin.apis import client
from gits_common import errors
from gits_common.schemas import UseCase

# queue_manager.schemas.NAME_PATTERN (a service may not import another; a test holds the
# two equal): names become file names and RabbitMQ queue names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
NAME_RULE = "letters, digits, '_', '.' and '-', starting with a letter or digit, at most 100"
ALGORITHMS = "/queue_manager/algorithms"
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Algorithm:
    """Every stored version of one algorithm name, newest first."""

    name: str
    versions: list[dict[str, Any]]

    @property
    def latest(self) -> dict[str, Any]:
        """The newest version."""
        return self.versions[0]

    @property
    def services(self) -> list[str]:
        """Services whose workers use any version of it now."""
        return sorted({s for version in self.versions for s in version["services"]})


@dataclass(frozen=True)
class Upload:
    """What the upload form asks for besides the file."""

    name: str
    use_case: UseCase
    description: str
    uploaded_by: str


def with_times(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The record with its ISO 8601 timestamps as datetimes, for templates to format."""
    out = dict(record)
    for key in keys:
        if isinstance(out.get(key), str):
            out[key] = datetime.fromisoformat(out[key])
    return out


def group_versions(records: list[dict[str, Any]]) -> list[Algorithm]:
    """queue_manager's flat list of versions as one `Algorithm` per name, by name."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_name.setdefault(record["name"], []).append(with_times(record, "uploaded_at"))
    return [
        Algorithm(name, sorted(versions, key=lambda v: int(v["version"]), reverse=True))
        for name, versions in sorted(by_name.items())
    ]


def algorithms() -> list[Algorithm]:
    """Every algorithm queue_manager stores."""
    return group_versions(client("queue_manager").request("GET", ALGORITHMS))


def algorithm(name: str) -> Algorithm:
    """One algorithm and all its versions; `NotFound` when queue_manager has none."""
    records = client("queue_manager").request("GET", ALGORITHMS, params={"name": name})
    if not records:
        raise errors.NotFound(f"queue_manager holds no algorithm named {name!r}")
    return group_versions(records)[0]


def sha256_of(content: IO[bytes]) -> str:
    """The SHA-256 of a file's bytes, read in chunks; the file is rewound after."""
    digest = hashlib.sha256()
    content.seek(0)
    while chunk := content.read(CHUNK_BYTES):
        digest.update(chunk)
    content.seek(0)
    return digest.hexdigest()


def upload_algorithm(upload: Upload, content: IO[bytes]) -> dict[str, Any]:
    """Store the file as the next version of `upload.name`; queue_manager checks the
    SHA-256 computed here, so a file damaged on the way is refused."""
    use_case = upload.use_case
    form = {
        "name": upload.name,
        "use_case": use_case.name,
        "task": use_case.task.value,
        "features": json.dumps(use_case.feature_names),
        "description": upload.description,
        "uploaded_by": upload.uploaded_by,
        "sha256": sha256_of(content),
    }
    if use_case.target is not None:
        form["target"] = use_case.target.name
    # The name the user's browser sent is never passed on: only the validated name.
    files = {"file": (f"{upload.name}.pkl", content, "application/octet-stream")}
    record: dict[str, Any] = client("queue_manager").request(
        "POST", ALGORITHMS, data=form, files=files
    )
    return with_times(record, "uploaded_at")


def delete_version(name: str, version: int) -> None:
    """Delete one version; queue_manager refuses (`Conflict`) while a service uses it."""
    client("queue_manager").request("DELETE", f"{ALGORITHMS}/{name}/versions/{version}")


def use_cases() -> list[UseCase]:
    """Every use case ml_data_api defines, by name."""
    records = client("ml_data_api").request("GET", "/ml_data_api/use_cases")
    found = [UseCase.model_validate(record["use_case"]) for record in records]
    return sorted(found, key=lambda u: u.name)


def use_case(name: str) -> UseCase:
    """One use case's definition."""
    record = client("ml_data_api").request("GET", f"/ml_data_api/use_cases/{name}")
    return UseCase.model_validate(record["use_case"])
