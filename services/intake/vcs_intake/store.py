"""The intake's own collection: one ``requests`` document per request, outbox embedded.

Accepting a request is a single insert of a document that already contains
its ``request.submitted`` event, so "stored" and "will be published" are one
atomic fact. A unique index on ``idempotency_key`` makes a retried submit find
the first request instead of making a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_shared.envelope import OutgoingMessage
from vcs_shared.outbox import ensure_outbox_index, outbox_fields

Document = dict[str, Any]

CANCELLABLE = ("submitted", "assigned", "delivered", "delivery_failed")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which requests a list shows: one district, or some provinces (``None``: all of them),
    optionally only some statuses and meetings starting in ``[starts_from_ms, starts_before_ms)``.
    """

    district_code: str | None = None
    province_codes: frozenset[str] | None = None
    statuses: tuple[str, ...] = ()
    starts_from_ms: int | None = None
    starts_before_ms: int | None = None

    def queries(self) -> list[Document]:
        """One store query per province (equality on a single-field index, which the
        embedded store serves; it scans for ``$in`` on anything but ``_id``)."""
        common: Document = {}
        if self.statuses:
            common["status"] = (
                self.statuses[0] if len(self.statuses) == 1 else {"$in": list(self.statuses)}
            )
        window: Document = {}
        if self.starts_from_ms is not None:
            window["$gte"] = self.starts_from_ms
        if self.starts_before_ms is not None:
            window["$lt"] = self.starts_before_ms
        if window:
            common["starts_ms"] = window
        if self.district_code is not None:
            return [{"district_code": self.district_code, **common}]
        if self.province_codes is None:
            return [common]
        return [{"province_code": code, **common} for code in sorted(self.province_codes)]


class DuplicateSubmission(Exception):
    """An earlier request already holds this idempotency key."""

    def __init__(self, existing: Document) -> None:
        self.existing = existing
        super().__init__(existing["_id"])


class RequestStore(Protocol):
    async def insert(self, document: Document) -> None: ...
    async def get(self, request_id: str) -> Document | None: ...
    async def cancel(
        self, request_id: str, messages: list[OutgoingMessage], at: datetime, by: str
    ) -> tuple[Document | None, list[Document] | None]: ...
    async def apply(self, request_id: str, allowed: tuple[str, ...], changes: Document) -> bool: ...
    async def set_fields(
        self, request_id: str, unless: tuple[str, ...], changes: Document
    ) -> None: ...
    async def ping(self) -> None: ...


class MongoRequestStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.requests = db["requests"]

    async def ensure_indexes(self) -> None:
        await self.requests.create_index("idempotency_key", unique=True)
        await self.requests.create_index([("district_code", 1), ("submitted_at", -1)])
        await self.requests.create_index("district_code")
        await self.requests.create_index("province_code")
        await ensure_outbox_index(self.requests)

    async def insert(self, document: Document) -> None:
        try:
            await self.requests.insert_one(document)
        except DuplicateKeyError as exc:
            existing = await self.requests.find_one(
                {"idempotency_key": document["idempotency_key"]}
            )
            if existing is None:
                raise
            raise DuplicateSubmission(existing) from exc

    async def get(self, request_id: str) -> Document | None:
        return await self.requests.find_one({"_id": request_id})

    async def newest(
        self, which: RequestFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[Document]:
        """Newest submitted first, ``limit`` of them, continuing after ``(submitted_ms, _id)``
        of the last one a previous page showed (keyset pagination: stable under inserts)."""
        order = [("submitted_ms", -1), ("_id", -1)]
        found: list[Document] = []
        for query in which.queries():
            if after is not None:
                ms, last_id = after
                query = {
                    **query,
                    "$or": [
                        {"submitted_ms": {"$lt": ms}},
                        {"submitted_ms": ms, "_id": {"$lt": last_id}},
                    ],
                }
            found += await self.requests.find(query).sort(order).limit(limit).to_list()
        found.sort(key=lambda d: (d.get("submitted_ms", 0), d["_id"]), reverse=True)
        return found[:limit]

    async def by_start(
        self, which: RequestFilter, *, earliest_first: bool, limit: int
    ) -> list[Document]:
        """Meetings in start order (soonest first, or latest first), at most ``limit``."""
        direction = 1 if earliest_first else -1
        found: list[Document] = []
        for query in which.queries():
            cursor = self.requests.find(query).sort([("starts_ms", direction), ("_id", 1)])
            found += await cursor.limit(limit).to_list()
        found.sort(key=lambda d: d.get("starts_ms", 0), reverse=not earliest_first)
        return found[:limit]

    async def cancel(
        self, request_id: str, messages: list[OutgoingMessage], at: datetime, by: str
    ) -> tuple[Document | None, list[Document] | None]:
        """Cancels with its event in one write; returns the request and the outbox written
        (None when nothing was written: unknown, or no longer cancellable).

        Compare-and-set on the status and the outbox size, so a status change or an
        outbox write racing the cancel makes it retry instead of being overwritten.
        """
        for _ in range(10):
            current = await self.get(request_id)
            if current is None or current["status"] not in CANCELLABLE:
                return current, None
            outbox = outbox_fields(current.get("outbox", []), messages)
            result = await self.requests.update_one(
                {
                    "_id": request_id,
                    "status": current["status"],
                    "outbox_count": current.get("outbox_count", 0),
                },
                {"$set": {"status": "cancelled", "cancellation": {"at": at, "by": by}, **outbox}},
            )
            if result.modified_count == 1:
                return await self.get(request_id), outbox["outbox"]
        raise RuntimeError(f"request {request_id} kept changing while being cancelled")

    async def apply(self, request_id: str, allowed: tuple[str, ...], changes: Document) -> bool:
        """Moves the status forward only from ``allowed`` states (projection updates).

        True if the request was in one of them (and so got ``changes``)."""
        result = await self.requests.update_one(
            {"_id": request_id, "status": {"$in": list(allowed)}}, {"$set": changes}
        )
        return result.matched_count == 1

    async def set_fields(self, request_id: str, unless: tuple[str, ...], changes: Document) -> None:
        await self.requests.update_one(
            {"_id": request_id, "status": {"$nin": list(unless)}}, {"$set": changes}
        )

    async def ping(self) -> None:
        await self.db.command("ping")
