"""The notifier's own collection: one ``deliveries`` document per request.

It holds the contact learned from ``request.submitted`` and, once sent, the
delivery outcome with the events announcing it (embedded outbox).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from vcs_shared.envelope import OutgoingMessage
from vcs_shared.events import RequestSubmitted
from vcs_shared.outbox import ensure_outbox_index, outbox_fields

Document = dict[str, Any]


class DeliveryStore(Protocol):
    async def remember_request(self, event: RequestSubmitted) -> None: ...
    async def delivery(self, request_id: str) -> Document | None: ...
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

    async def record_outcome(
        self, request_id: str, kind: str, outcome: Document, messages: list[OutgoingMessage]
    ) -> list[Document] | None:
        """Records the outcome of one kind of mail (``assigned``, ``released``) once, with its
        events; returns the outbox written, or None if it was recorded before."""
        current = await self.deliveries.find_one(
            {"_id": request_id}, {"outbox": 1, "outbox_count": 1}
        )
        if current is None:
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
        return outbox["outbox"] if result.modified_count == 1 else None
