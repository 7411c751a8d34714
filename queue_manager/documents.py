"""The mongoengine documents of queue_manager: algorithms, services and jobs.

mongoengine ties a document class to one connection alias. Every app has an alias of its
own (tests build many apps in one process, each on its own in-memory store), so the
classes here are abstract templates and `bind` derives the concrete ones for an alias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, cast

from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    DynamicField,
    EmbeddedDocument,
    EmbeddedDocumentField,
    FileField,
    FloatField,
    IntField,
    ListField,
    StringField,
)

ALGORITHM_FILES = "algorithm_files"  # the GridFS bucket holding the model files


class Algorithm(Document):
    """One uploaded version of a model file, with what it predicts and its checksum."""

    meta = {
        "abstract": True,
        "indexes": [{"fields": ["name", "-version"], "unique": True}, "use_case"],
    }

    name = StringField(required=True)
    version = IntField(required=True, min_value=1)
    use_case = StringField(required=True)
    task = StringField(required=True)
    features = ListField(StringField(), required=True)
    target = StringField(null=True)
    description = StringField(null=True)
    sha256 = StringField(required=True)
    size = IntField(required=True)
    filename = StringField(required=True)
    uploaded_by = StringField(required=True)
    uploaded_at = DateTimeField(required=True)
    check = DictField(null=True)  # gits_common.registry.ModelCheck: what the upload check found
    file = FileField(collection_name=ALGORITHM_FILES)  # rebound to the app's alias by `bind`


class Service(Document):
    """A worker service and the algorithm version its workers use."""

    meta = {"abstract": True, "indexes": ["algorithm_name"]}

    name = StringField(primary_key=True)
    routing_key = StringField(required=True)
    use_case = StringField(required=True)
    algorithm_name = StringField(required=True)
    algorithm_version = IntField(null=True, min_value=1)  # None: the latest, whichever it is
    updated_at = DateTimeField(required=True)
    updated_by = StringField(null=True)
    model_status = DictField(null=True)  # gits_common.registry.ModelStatus, from the workers


class JobMetadata(EmbeddedDocument):
    """When and where a job ran."""

    start_date = DateTimeField(required=True)
    end_date = DateTimeField(null=True)
    time_elapsed_sec = FloatField(null=True)
    routing_key = StringField(null=True)
    worker = StringField(null=True)


class Job(Document):
    """What became of one sensor message in one service. A message routed to two
    services (a shadow model, say) has a job in each, so the key is both."""

    meta = {
        "abstract": True,
        "indexes": [
            {"fields": ["service", "message_id"], "unique": True},
            # The queries of list_jobs and count_jobs: by service, by status, by time.
            ("service", "-metadata.start_date"),
            ("last_status", "-metadata.start_date"),
            ("service", "last_status"),
            "-metadata.start_date",
        ],
    }

    message_id = StringField(required=True)
    service = StringField(required=True)
    payload = DictField()
    last_status = StringField(required=True)
    result = DynamicField(null=True)
    message = StringField(null=True)
    model_version = StringField(null=True)
    metadata = EmbeddedDocumentField(JobMetadata, required=True)


@dataclass(frozen=True)
class Documents:
    """The document classes of one app, stored through its connection alias."""

    alias: str
    algorithms: type[Algorithm]
    services: type[Service]
    jobs: type[Job]


D = TypeVar("D", bound=Document)


def bind(alias: str) -> Documents:
    """Concrete algorithm, service and job documents stored through `alias`."""
    return Documents(
        alias=alias,
        algorithms=_concrete(
            Algorithm,
            alias,
            "algorithms",
            file=FileField(db_alias=alias, collection_name=ALGORITHM_FILES),
        ),
        services=_concrete(Service, alias, "services"),
        jobs=_concrete(Job, alias, "jobs"),
    )


def _concrete(template: type[D], alias: str, collection: str, **fields: Any) -> type[D]:
    meta = {"db_alias": alias, "collection": collection}
    return cast(type[D], type(template.__name__, (template,), {"meta": meta, **fields}))
