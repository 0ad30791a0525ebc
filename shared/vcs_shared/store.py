"""The MongoDB client, made once per process at the composition root.

``tz_aware=True`` so that every datetime read back is aware (UTC), which the
range queries on reservations rely on. Ids are stored as strings: the embedded
store cannot query native UUIDs outside ``_id``. Writes are acknowledged by a
majority, journaled: the intake answers ``202`` and consumers ack only after
their write is acknowledged, so the acknowledgement must mean durable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from vcs_shared.metrics import StoreCommandCounter

Document = dict[str, Any]

DUPLICATE_KEY = 11000
"""The server's code for a write refused by a unique index (both stores)."""


def make_client(url: str, *, app_name: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        url,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=5000,
        socketTimeoutMS=20000,  # a reply that never comes fails (and is retried), never hangs
        w="majority",  # acknowledged = durable: on a replica set, it survives a failover
        journal=True,
        event_listeners=[StoreCommandCounter()],
    )


def database_name(namespace: str, service: str) -> str:
    """Each service owns its own database: ``<namespace>_<service>``."""
    return f"{namespace}_{service}".replace("-", "_")


def epoch_ms(moment: datetime) -> int:
    """A lease or claim time as epoch milliseconds, for fields written with ``$set`` and then
    compared in a filter: nx-27017 stores a datetime given to ``$set`` as a string, which
    range filters then miss (``find``) or compare to the whole second (updates)."""
    return int(moment.timestamp() * 1000)


def raise_unless_duplicates(exc: BulkWriteError) -> None:
    """An unordered insert that the store refused only for documents already there (duplicate
    keys: a redelivery, a second copy) is no error; anything else is raised again, including a
    batch whose only errors are the write concern's."""
    errors = exc.details.get("writeErrors", [])
    if not errors or any(error.get("code") != DUPLICATE_KEY for error in errors):
        raise exc
