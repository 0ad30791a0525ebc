"""The allocator's own collections: rooms, slots (the double-booking guard) and decisions.

* ``rooms`` — one document per Meeting ID (``_id``), its pool, capacity and credentials.
* ``slots`` — one document per Meeting ID per slot of the grid, under a unique
  compound index ``(meeting_id, slot)``. Claiming a room for a window inserts
  all its slots; a slot already held by another request makes the insert fail
  with a duplicate-key error. This index is what makes double booking
  impossible, across any number of allocator processes.
* ``decisions`` — one document per request (``_id`` = request id): assigned,
  rejected or cancelled, with the events announcing it embedded as its outbox.
  Its unique ``_id`` makes each request decided exactly once.

A claim is two writes (slots, then decision). A crash between them leaves
slots without a decision: a redelivery of the same request adopts them (slots
held by the same request are not a conflict), and :meth:`sweep_orphans`
removes the ones whose request was never decided after a lease.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from vcs_allocator.domain import Room, Span
from vcs_shared.envelope import OutgoingMessage
from vcs_shared.outbox import ensure_outbox_index, outbox_fields

Document = dict[str, Any]


class ReservationStore(Protocol):
    """What the allocation handlers need from storage."""

    async def decision(self, request_id: str) -> Document | None: ...
    async def rooms(self, pools: Sequence[str]) -> list[Room]: ...
    async def busy_meeting_ids(self, meeting_ids: Iterable[str], span: Span) -> set[str]: ...
    async def claim(self, meeting_id: str, request_id: str, slots: Sequence[datetime]) -> bool: ...
    async def record_decision(self, decision: Document) -> Document | None: ...
    async def release_claim(self, meeting_id: str, request_id: str) -> None: ...
    async def release_slots(self, request_id: str) -> int: ...
    async def mark_released(
        self, request_id: str, messages: list[OutgoingMessage]
    ) -> list[Document] | None: ...


class MongoReservationStore:
    """:class:`ReservationStore` on MongoDB (or the embedded wire-compatible store)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.rooms_collection = db["rooms"]
        self.slots = db["slots"]
        self.decisions = db["decisions"]

    async def ensure_indexes(self) -> None:
        await self.slots.create_index(
            [("meeting_id", ASCENDING), ("slot", ASCENDING)],
            unique=True,
            name="one_holder_per_slot",
        )
        await self.slots.create_index("request_id")
        await self.slots.create_index([("confirmed", ASCENDING), ("claimed_at", ASCENDING)])
        await self.rooms_collection.create_index([("pool", ASCENDING), ("active", ASCENDING)])
        await self.decisions.create_index("meeting_id")
        await ensure_outbox_index(self.decisions)

    async def decision(self, request_id: str) -> Document | None:
        return await self.decisions.find_one({"_id": request_id})

    async def rooms(self, pools: Sequence[str]) -> list[Room]:
        cursor = self.rooms_collection.find({"pool": {"$in": list(pools)}, "active": True})
        return [room_from_document(doc) async for doc in cursor]

    async def busy_meeting_ids(self, meeting_ids: Iterable[str], span: Span) -> set[str]:
        cursor = self.slots.find(
            {
                "meeting_id": {"$in": list(meeting_ids)},
                "slot": {"$gte": span.start, "$lt": span.end},
            },
            {"meeting_id": 1, "_id": 0},
        )
        return {doc["meeting_id"] async for doc in cursor}

    async def claim(self, meeting_id: str, request_id: str, slots: Sequence[datetime]) -> bool:
        """Holds every slot for ``request_id``, or none of them; True if the room is ours."""
        now = datetime.now(UTC)
        docs = [
            {
                "_id": ObjectId(),
                "meeting_id": meeting_id,
                "slot": slot,
                "request_id": request_id,
                "claimed_at": now,
                "confirmed": False,
            }
            for slot in slots
        ]
        try:
            await self.slots.insert_many(docs, ordered=False)
            return True
        except BulkWriteError as exc:
            failed = {err["index"] for err in exc.details.get("writeErrors", [])}
            if any(err.get("code") != 11000 for err in exc.details.get("writeErrors", [])):
                await self._undo(docs, failed)
                raise
        foreign = await self.slots.find_one(
            {
                "meeting_id": meeting_id,
                "slot": {"$in": [docs[i]["slot"] for i in failed]},
                "request_id": {"$ne": request_id},
            }
        )
        if foreign is None:
            return True  # the slots we could not insert are already ours (a redelivery)
        await self._undo(docs, failed)
        return False

    async def _undo(self, docs: list[Document], failed: set[int]) -> None:
        inserted = [doc["_id"] for i, doc in enumerate(docs) if i not in failed]
        if inserted:
            await self.slots.delete_many({"_id": {"$in": inserted}})

    async def record_decision(self, decision: Document) -> Document | None:
        """Stores the decision; returns the one already stored if another process was first."""
        try:
            await self.decisions.insert_one(decision)
        except DuplicateKeyError:
            return await self.decisions.find_one({"_id": decision["_id"]})
        return None

    async def release_slots(self, request_id: str) -> int:
        result = await self.slots.delete_many({"request_id": request_id})
        return result.deleted_count

    async def release_claim(self, meeting_id: str, request_id: str) -> None:
        await self.slots.delete_many({"meeting_id": meeting_id, "request_id": request_id})

    async def mark_released(
        self, request_id: str, messages: list[OutgoingMessage]
    ) -> list[Document] | None:
        """Marks an assigned decision released with its events; returns the outbox written,
        or None if it already was released."""
        current = await self.decisions.find_one(
            {"_id": request_id}, {"outbox": 1, "outbox_count": 1, "released": 1}
        )
        if current is None or current.get("released"):
            return None
        outbox = outbox_fields(current.get("outbox", []), messages)
        result = await self.decisions.update_one(
            {"_id": request_id, "released": False, "outbox_count": current.get("outbox_count", 0)},
            {"$set": {"released": True, "released_at": datetime.now(UTC), **outbox}},
        )
        return outbox["outbox"] if result.modified_count == 1 else None

    async def sweep_orphans(self, lease: timedelta) -> tuple[int, int]:
        """Confirms slots whose request was decided for them, frees the rest after ``lease``.

        Returns (confirmed, freed) request counts.
        """
        cutoff = datetime.now(UTC) - lease
        cursor = self.slots.find(
            {"confirmed": False, "claimed_at": {"$lt": cutoff}},
            {"request_id": 1, "meeting_id": 1},
        ).limit(5000)
        holders = {(doc["request_id"], doc["meeting_id"]) async for doc in cursor}
        confirmed = freed = 0
        for request_id, meeting_id in holders:
            decision = await self.decisions.find_one({"_id": request_id})
            kept = (
                decision is not None
                and decision.get("meeting_id") == meeting_id
                and not decision.get("released")
            )
            query = {"request_id": request_id, "meeting_id": meeting_id, "confirmed": False}
            if kept:
                await self.slots.update_many(query, {"$set": {"confirmed": True}})
                confirmed += 1
            else:
                await self.slots.delete_many(query)
                freed += 1
        return confirmed, freed

    async def replace_rooms(self, rooms: Sequence[Room]) -> None:
        """Makes the stored pool equal to ``rooms``; rooms no longer listed become inactive.

        Reservations are untouched: a deactivated room keeps its bookings.
        """
        listed = [r.meeting_id for r in rooms]
        for room in rooms:
            await self.rooms_collection.replace_one(
                {"_id": room.meeting_id}, room_to_document(room), upsert=True
            )
        await self.rooms_collection.update_many(
            {"_id": {"$nin": listed}}, {"$set": {"active": False}}
        )

    async def room_count(self) -> int:
        return await self.rooms_collection.count_documents({})


def room_to_document(room: Room) -> Document:
    return {
        "_id": room.meeting_id,
        "capacity": room.capacity,
        "pool": room.pool,
        "passcode": room.passcode,
        "join_url": room.join_url,
        "active": room.active,
    }


def room_from_document(doc: Document) -> Room:
    return Room(
        meeting_id=doc["_id"],
        capacity=doc["capacity"],
        pool=doc["pool"],
        passcode=doc["passcode"],
        join_url=doc["join_url"],
        active=doc["active"],
    )
