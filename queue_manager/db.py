"""The MongoDB connection of one app: the real MongoDB at MONGODB_URL, or an in-memory
mongomock store when none is configured. Lost connections answer `Unavailable`."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import mongoengine
import mongomock
import mongomock.gridfs
from pymongo.errors import ConnectionFailure, DocumentTooLarge

from gits_common.errors import TooLarge, Unavailable
from queue_manager.documents import Documents, bind

T = TypeVar("T")


class Database:
    """One app's MongoDB connection and the documents stored through it."""

    def __init__(self, *, url: str, name: str, connect_timeout: float) -> None:
        self.in_memory = not url
        alias = f"queue-manager-{uuid.uuid4().hex}"
        self.documents = bind(alias)
        # mongomock is not built for threads: it checks a unique index and then writes,
        # so two upserts of one message_id at once fail with a duplicate key. Requests
        # run in a thread pool, so the in-memory store takes one unit of work at a time.
        self._serial: AbstractContextManager[Any] = contextlib.nullcontext()
        if self.in_memory:
            self._serial = threading.RLock()
            mongomock.gridfs.enable_gridfs_integration()
            # mongoengine shares one client between aliases with equal settings; a host of
            # its own gives each app a private, empty store.
            mongoengine.connect(
                db=name,
                alias=alias,
                host=f"mongodb://{alias}",
                mongo_client_class=mongomock.MongoClient,
                tz_aware=True,
            )
        else:
            timeout_ms = int(connect_timeout * 1000)
            mongoengine.connect(
                db=name,
                alias=alias,
                host=url,
                tz_aware=True,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
            )

    @property
    def description(self) -> str:
        """What /health reports about the store."""
        return "in-memory (mongomock)" if self.in_memory else "up"

    def run(self, work: Callable[[Documents], T]) -> T:
        """`work(documents)`, with MongoDB out of reach reported as `Unavailable`."""
        try:
            with self._serial:
                return work(self.documents)
        except ConnectionFailure as exc:
            raise Unavailable(f"MongoDB unavailable: {exc}") from exc
        except DocumentTooLarge as exc:
            raise TooLarge(f"a document is over MongoDB's size limit: {exc}") from exc

    def detach(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Chunks that may be read after `run` returns. The in-memory store is read at
        once: a half-read mongomock cursor would block every writer until it ends."""
        return iter(list(chunks)) if self.in_memory else chunks

    def ping(self) -> None:
        """Raise `Unavailable` unless MongoDB answers a ping."""
        self.run(lambda docs: mongoengine.get_db(docs.alias).command("ping"))

    def close(self) -> None:
        """Close the connection (an in-memory store is gone with it)."""
        mongoengine.disconnect(self.documents.alias)
