"""The notifier's own collection: one ``deliveries`` document per request.

It holds the contact learned from ``request.submitted`` and, once sent, the
delivery outcome with the events announcing it (embedded outbox).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from vcs_shared.envelope import OutgoingMessage
from vcs_shared.events import RequestSubmitted
from vcs_shared.outbox import ensure_outbox_index, outbox_fields
from vcs_shared.store import epoch_ms

Document = dict[str, Any]


class DeliveryStore(Protocol):
    async def remember_request(self, event: RequestSubmitted) -> None: ...
    async def delivery(self, request_id: str) -> Document | None: ...
    async def claim(
        self, request_id: str, kind: str, lease: timedelta, *, now: datetime | None = None
    ) -> bool: ...
    async def record_outcome(
        self, request_id: str, kind: str, outcome: Document, messages: list[OutgoingMessage]
    ) -> list[Document] | None: ...


class MongoDeliveryStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.deliveries = db["deliveries"]

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.deliveries)

    async def remember_request(self, event: RequestSubmitted) -> None:
        await self.deliveries.update_one(
            {"_id": event.request_id},
            {
                "$setOnInsert": {
                    "contact": event.contact.model_dump(),
                    "title": event.title,
                    "province_code": event.province_code,
                    "district_code": event.district_code,
                    "created_at": datetime.now(UTC),
                    **outbox_fields([], []),
                }
            },
            upsert=True,
        )

    async def delivery(self, request_id: str) -> Document | None:
        return await self.deliveries.find_one({"_id": request_id})

    async def claim(
        self, request_id: str, kind: str, lease: timedelta, *, now: datetime | None = None
    ) -> bool:
        """The right to send one kind of mail (``assigned``, ``released``) for a request: one
        handler at a time holds it, so two copies of an event handled at once send one mail.
        It is a lease: a handler that died holding it is replaced once ``lease`` has passed.

        Two plain compare-and-set writes, the first for a mail never claimed, the second for
        a lease run out: nx-27017 matches an update filter wrongly when an ``$or`` holds an
        ``$exists``. The claim time is epoch milliseconds (:func:`epoch_ms`)."""
        now = now or datetime.now(UTC)
        claimed_ms = f"{kind}_claimed_ms"
        for held in ({"$exists": False}, {"$lt": epoch_ms(now - lease)}):
            result = await self.deliveries.update_one(
                {"_id": request_id, kind: {"$exists": False}, claimed_ms: held},
                {"$set": {claimed_ms: epoch_ms(now)}},
            )
            if result.modified_count == 1:
                return True
        return False

    async def record_outcome(
        self, request_id: str, kind: str, outcome: Document, messages: list[OutgoingMessage]
    ) -> list[Document] | None:
        """Records the outcome of one kind of mail (``assigned``, ``released``) once, with its
        events; returns the outbox written, or None if it was recorded before.

        The outbox size is the compare-and-set guard; when the other kind of mail was
        recorded meanwhile (a release racing an assignment) the write is tried again, not
        dropped, or the outcome and its event would be lost.
        """
        for _ in range(10):
            current = await self.deliveries.find_one(
                {"_id": request_id}, {"outbox": 1, "outbox_count": 1, kind: 1}
            )
            if current is None or kind in current:
                return None
            outbox = outbox_fields(current.get("outbox", []), messages)
            result = await self.deliveries.update_one(
                {
                    "_id": request_id,
                    kind: {"$exists": False},
                    "outbox_count": current.get("outbox_count", 0),
                },
                {"$set": {kind: outcome, **outbox}},
            )
            if result.modified_count == 1:
                return list(outbox["outbox"])
        raise RuntimeError(f"delivery {request_id} kept changing while recording {kind}")
