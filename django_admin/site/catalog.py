"""Algorithms (model files and their versions) as queue_manager holds them, and the use
cases ml_data_api defines. Every read asks the owner; nothing is kept here."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import httpx
from pydantic import ValidationError

from django_admin.apis import acting_client, client
from django_admin.site import checks
from django_admin.site.records import Field, complete, listed
from gits_common import errors
from gits_common.schemas import UseCase

log = logging.getLogger(__name__)

ALGORITHMS = "/queue_manager/algorithms"
USE_CASES = "/ml_data_api/use_cases"
CHUNK_BYTES = 1024 * 1024
# queue_manager's AlgorithmRead, as far as the pages use it.
VERSION_FIELDS = (
    Field("name", checks.name),
    Field("version", checks.ident),
    Field("use_case", checks.text),
    Field("task", checks.text),
    Field("features", checks.texts),
    Field("target", checks.text, required=False),
    Field("description", checks.text, required=False),
    Field("sha256", checks.text),
    Field("size", checks.count),
    Field("uploaded_by", checks.text),
    Field("uploaded_at", checks.time),
    Field("services", checks.names),
)


@dataclass(frozen=True)
class Algorithm:
    """Every stored version of one algorithm name, newest first; `name` is None for
    versions queue_manager answered without a usable name."""

    name: str | None
    versions: list[dict[str, Any]]

    @property
    def latest(self) -> dict[str, Any]:
        """The newest version."""
        return self.versions[0]

    @property
    def services(self) -> list[str]:
        """Services whose workers use any version of it now."""
        return sorted({s for version in self.versions for s in version["services"] or []})

    @property
    def problems(self) -> list[str]:
        """What the versions' records lack, each with its version."""
        return [
            f"version {v['version'] or '?'}: {problem}"
            for v in self.versions
            for problem in v["problems"]
        ]


@dataclass(frozen=True)
class UseCases:
    """The use cases ml_data_api defines, and those whose record the admin cannot use."""

    usable: list[UseCase]
    unusable: list[str] = field(default_factory=list)  # "name: why", one per record


@dataclass(frozen=True)
class Upload:
    """What the upload form asks for besides the file."""

    name: str
    use_case: UseCase
    description: str
    uploaded_by: str


def version_record(record: Any) -> dict[str, Any]:
    """One algorithm version as the pages use it (`records.complete`)."""
    return complete(record, VERSION_FIELDS)


def group_versions(records: list[Any]) -> list[Algorithm]:
    """queue_manager's flat list of versions as one `Algorithm` per name, by name; the
    versions without a usable name last, together."""
    by_name: dict[str | None, list[dict[str, Any]]] = {}
    for record in map(version_record, records):
        by_name.setdefault(record["name"], []).append(record)
    ordered = sorted(by_name.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return [Algorithm(name, _newest_first(versions)) for name, versions in ordered]


def algorithms(*, use_case: str | None = None) -> list[Algorithm]:
    """Every algorithm queue_manager stores, or only those of `use_case`."""
    params = {"use_case": use_case} if use_case else {}
    records = client("queue_manager").request("GET", ALGORITHMS, params=params)
    return group_versions(listed(records, api="queue_manager"))


def algorithm(name: str) -> Algorithm:
    """One algorithm and all its versions; `NotFound` when queue_manager has none."""
    records = client("queue_manager").request("GET", ALGORITHMS, params={"name": name})
    if not records:
        raise errors.NotFound(f"queue_manager holds no algorithm named {name!r}")
    # queue_manager answered the versions of this name: one without its name is one too.
    return Algorithm(
        name, _newest_first([version_record(r) for r in listed(records, api="queue_manager")])
    )


def _newest_first(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(versions, key=lambda v: v["version"] or 0, reverse=True)


def sha256_of(content: IO[bytes]) -> str:
    """The SHA-256 of a file's bytes, read in chunks; the file is rewound after."""
    digest = hashlib.sha256()
    content.seek(0)
    while chunk := content.read(CHUNK_BYTES):
        digest.update(chunk)
    content.seek(0)
    return digest.hexdigest()


def upload_algorithm(upload: Upload, content: IO[bytes], *, user: Any) -> dict[str, Any]:
    """Store the file as the next version of `upload.name`, as `user` asked (who must be
    allowed to manage models, else `PermissionDenied`); queue_manager checks the SHA-256
    computed here, so a file damaged on the way is refused."""
    queue_manager = acting_client("queue_manager", user)
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
    record = queue_manager.request("POST", ALGORITHMS, data=form, files=files)
    return version_record(record)


class FileChunks:
    """A model file's bytes as queue_manager sends them, in pieces; `close` (which Django
    calls once the download ends, however it ends) lets go of the connection."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._pieces = response.iter_bytes(CHUNK_BYTES)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        """Close the connection to queue_manager, read to the end or not."""
        self._response.close()


@dataclass(frozen=True)
class ModelFile:
    """A model version's file as queue_manager sends it, not read yet."""

    filename: str
    sha256: str | None
    size: str | None  # queue_manager's Content-Length, passed on as it came
    chunks: FileChunks


def open_version_file(name: str, version: int, *, user: Any) -> ModelFile:
    """Start reading one version's file from queue_manager, as `user` asked. Reading a
    model file needs the runtime role, which the read token lacks: it goes out with the
    admin token, so `user` must be allowed to manage models (`PermissionDenied`)."""
    queue_manager = acting_client("queue_manager", user)
    path = f"{ALGORITHMS}/{name}/versions/{version}/file"
    response = queue_manager.send("GET", path, stream=True)
    filename = _attachment_name(response.headers.get("Content-Disposition"))
    return ModelFile(
        filename=filename or f"{name}-v{version}.pkl",
        sha256=response.headers.get("X-Checksum-SHA256"),
        size=response.headers.get("Content-Length"),
        chunks=FileChunks(response),
    )


def _attachment_name(disposition: str | None) -> str | None:
    found = re.search(r'filename="?([^";]+)"?', disposition or "")
    return found[1].strip() if found else None


def delete_version(name: str, version: int, *, user: Any) -> None:
    """Delete one version, as `user` asked (`PermissionDenied` unless allowed to manage
    models); queue_manager refuses (`Conflict`) while a service uses it."""
    queue_manager = acting_client("queue_manager", user)
    queue_manager.request("DELETE", f"{ALGORITHMS}/{name}/versions/{version}")


def use_cases() -> UseCases:
    """Every use case ml_data_api defines, by name; a record that is no usable use case
    is left out of the choices and named with why."""
    found = UseCases([])
    for number, record in enumerate(
        listed(client("ml_data_api").request("GET", USE_CASES), api="ml_data_api")
    ):
        definition = record.get("use_case") if isinstance(record, dict) else None
        try:
            found.usable.append(UseCase.model_validate(definition))
        except ValidationError as exc:
            label = definition.get("name") if isinstance(definition, dict) else None
            found.unusable.append(f"{label or f'record {number + 1}'}: {_reasons(exc)}")
    if found.unusable:
        log.warning("ml_data_api answered unusable use cases: %s", found.unusable)
    found.usable.sort(key=lambda u: u.name)
    return found


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'use_case'}: {error['msg']}"
        for error in exc.errors()
    )
