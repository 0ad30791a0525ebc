"""The allocator's own collections: rooms, slots (the double-booking guard) and decisions.

* ``rooms`` — one document per Meeting ID (``_id``), its pool, capacity and credentials.
* ``slots`` — one document per Meeting ID per slot of the grid (``slot`` is the
  slot's start in epoch minutes, see :func:`slot_key`), keyed ``_id`` =
  ``"<meeting_id>|<slot>"`` (:func:`slot_id`) and under a unique compound
  index ``(meeting_id, slot)``. Claiming a room for a window inserts all its
  slots; a slot already held by another request makes the insert fail with a
  duplicate-key error (from either unique index). The compound index is the
  rule that makes double booking impossible, across any number of allocator
  processes; the derived ``_id`` enforces the same and lets the occupancy probe
  be an ``_id`` lookup, the one ``$in`` the embedded store serves from an index.
* ``decisions`` — one document per request (``_id`` = request id): assigned,
  rejected or cancelled, with the events announcing it embedded as its outbox.
  Its unique ``_id`` makes each request decided exactly once.

A claim inserts its slots in one ordered ``insert_many`` (ascending slot), so
two allocators racing for one room meet on their first common slot: one wins,
the other stops there and rolls back only the slot documents it inserted
itself (by ``_id`` and its ``attempt`` token). Unordered inserts could split
the slots between the two and make both give the room up.

Each record has its document mapping once, at the end of this module; the
decision and the events announcing it are written through an
:class:`~vcs_shared.outbox.Outbox`.

A claim is two writes (slots, then decision). A crash between them leaves
slots without a decision: a redelivery of the same request adopts them (it
takes them over with its own ``attempt`` and a fresh ``claimed_ms``), and
:meth:`MongoReservationStore.sweep_orphans` removes the ones whose request was
never decided for them once their lease has run out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from bson import ObjectId
from pymongo import ASCENDING, DeleteMany, UpdateMany
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from vcs_allocator.domain import (
    AssignedRoom,
    Booking,
    Decision,
    DecisionOutcome,
    Reservation,
    Room,
    kept_keys,
)
from vcs_allocator.pool_store import PoolChange, PoolStore
from vcs_shared.broker import EventPublisher
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.events import RejectionReason
from vcs_shared.outbox import OFFLINE, SILENT, Announcement, Change, Outbox
from vcs_shared.store import DUPLICATE_KEY, Document, epoch_ms, raise_unless_duplicates
from vcs_shared.thaitime import BANGKOK

SOURCE = "allocator"
MINUTES_PER_DAY = 24 * 60
OCCUPANCY_BATCH = 100_000
"""First batch of the occupancy query: every holder at once (the driver's default is 101
documents, then a ``getMore`` per further batch)."""
REKEY_BATCH = 1000
"""Slot documents given their :func:`slot_id` per round of
:meth:`MongoReservationStore.rekey_slots`."""

OLD_SLOT_IDS: Document = {"_id": {"$gte": ObjectId("0" * 24)}}
"""The slot documents with an ObjectId ``_id`` (written before :func:`slot_id`): a range within
the ObjectId type (MongoDB compares only within one type; nx-27017 has no ``$type`` for
ObjectId, but the same range)."""

LIVE_ASSIGNMENT: Document = {"outcome": DecisionOutcome.assigned.value, "released": False}
"""The store-side form of :attr:`Decision.reservation`: the filter of live assignments."""


@dataclass(frozen=True, slots=True)
class Occupancy:
    """Who holds slots of the candidate rooms in a span, seen from one request."""

    busy: frozenset[str]
    """Meeting IDs with a slot held by another request."""
    held: frozenset[str] = frozenset()
    """Meeting IDs this request already holds slots of (left by an attempt that crashed)."""


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one orphan sweep did, counted in (request, Meeting ID) claims."""

    confirmed: int
    freed: int
    full: bool
    """The batch was full: more may be waiting."""


class ReservationStore(Protocol):
    """What the allocation handlers need from storage."""

    async def decision(self, request_id: str) -> Decision | None: ...
    async def rooms(self, pools: Sequence[str]) -> list[Room]: ...
    async def occupancy(
        self,
        meeting_ids: Iterable[str],
        probes: Sequence[datetime],
        request_id: str,
        *,
        glance: Iterable[str] = (),
    ) -> Occupancy: ...
    async def claim(
        self,
        meeting_id: str,
        request_id: str,
        slots: Sequence[datetime],
        *,
        adopt: bool = False,
        pool: str | None = None,
    ) -> bool: ...
    async def record_decision(
        self, decision: Decision, announcement: Announcement = SILENT
    ) -> Decision | None: ...
    async def release_claim(self, meeting_id: str, request_id: str) -> None: ...
    async def release_slots(
        self, request_id: str, meeting_id: str, *, starting: datetime, slot: timedelta
    ) -> int: ...
    async def mark_released(
        self, request_id: str, at: datetime, announcement: Announcement
    ) -> bool: ...


class MongoReservationStore:
    """:class:`ReservationStore` on MongoDB (or the embedded wire-compatible store)."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        publisher: EventPublisher = OFFLINE,
        sealer: CredentialsSealer | None = None,
    ) -> None:
        self.db = db
        self.pools = PoolStore(db, sealer)
        self.slots = db["slots"]
        self.rekeying = db["slots_rekeying"]
        self.decisions = db["decisions"]
        self._outbox = Outbox(self.decisions, source=SOURCE, publisher=publisher)
        self.relay = self._outbox.relay

    async def ensure_indexes(self) -> None:
        await self.slots.create_index(
            [("meeting_id", ASCENDING), ("slot", ASCENDING)],
            unique=True,
            name="one_holder_per_slot",
        )
        await self.slots.create_index("request_id")
        await self.slots.create_index("pool_day")
        await self.slots.create_index([("confirmed", ASCENDING), ("claimed_ms", ASCENDING)])
        await self.pools.ensure_indexes()
        await self.decisions.create_index("meeting_id")
        await self.decisions.create_index("day")
        await self._outbox.ensure_index()
        await self.rekey_slots()

    async def rekey_slots(self) -> int:
        """Gives slot documents written before slots had a :func:`slot_id` (an ObjectId
        ``_id``) theirs; returns how many it moved. Run at every start (it finds nothing once
        done), before the allocator consumes: the occupancy probe sees only slot ids.

        An ``_id`` cannot be changed in place, and the unique ``(meeting_id, slot)`` index
        refuses the new document while the old one exists, so each round copies a batch to
        ``slots_rekeying`` first, then deletes the old documents, inserts the new ones and
        empties the copy. A start after a crash anywhere in a round finishes it from the
        copy; a copy already rekeyed (by another allocator starting alongside) is refused
        by its ``_id`` and skipped.
        """
        moved = await self._finish_rekeying()
        while True:
            old = await self.slots.find(OLD_SLOT_IDS).limit(REKEY_BATCH).to_list()
            if not old:
                # Another allocator may have deleted the old documents of its round and not
                # yet inserted the new ones: its copy is there, finish it before going on.
                return moved + await self._finish_rekeying()
            copies = [
                {**doc, "_id": slot_id(doc["meeting_id"], doc["slot"]), "old_id": doc["_id"]}
                for doc in old
            ]
            await _insert_new(self.rekeying, copies)
            moved += await self._finish_rekeying()

    async def _finish_rekeying(self) -> int:
        copies = await self.rekeying.find({}).to_list()
        if not copies:
            return 0
        await self.slots.delete_many({"_id": {"$in": [copy["old_id"] for copy in copies]}})
        await _insert_new(
            self.slots, [{k: v for k, v in copy.items() if k != "old_id"} for copy in copies]
        )
        await self.rekeying.delete_many({"_id": {"$in": [copy["_id"] for copy in copies]}})
        return len(copies)

    async def decision(self, request_id: str) -> Decision | None:
        document = await self.decisions.find_one({"_id": request_id})
        return None if document is None else decision_from_document(document)

    async def rooms(self, pools: Sequence[str]) -> list[Room]:
        """The active rooms of the current versions of ``pools`` (see ``pool_store``)."""
        return await self.pools.rooms(pools)

    async def occupancy(
        self,
        meeting_ids: Iterable[str],
        probes: Sequence[datetime],
        request_id: str,
        *,
        glance: Iterable[str] = (),
    ) -> Occupancy:
        """Which candidate rooms others hold at the ``probes`` (see
        :func:`~vcs_allocator.domain.probe_slots`), and which this request already holds.

        Only a hint for choosing: the unique index decides. One query: the holders of the
        candidates' slots at the probes (their :func:`slot_id`, every room x probe, an
        ``_id $in`` that both stores serve from the ``_id`` index), split by whether they
        are this request. The probes include the span's first slot, the one every claim
        inserts first (slots go in ascending order), so a room an earlier attempt of this
        request claimed even partly shows as held; a room it held outside the candidates is
        freed by the orphan sweep. The embedded store answers at roughly 0.2 ms per document
        shipped, hence the probes and the narrow projection; all of it in the first batch
        (no ``getMore``).

        The rooms to ``glance`` at are read at the first probe only, in the same query: enough
        to see which of them this request holds (and some of those others hold), for the
        price of one id each.
        """
        keys = [slot_key(probe) for probe in probes]
        ids = [slot_id(meeting_id, key) for meeting_id in meeting_ids for key in keys]
        ids += [slot_id(meeting_id, keys[0]) for meeting_id in glance] if keys else []
        cursor = self.slots.find(
            {"_id": {"$in": ids}},
            {"meeting_id": 1, "request_id": 1, "_id": 0},
            batch_size=OCCUPANCY_BATCH,
        )
        busy: set[str] = set()
        held: set[str] = set()
        async for doc in cursor:
            (held if doc["request_id"] == request_id else busy).add(doc["meeting_id"])
        return Occupancy(frozenset(busy), frozenset(held))

    async def busy_rooms(self, pools: Sequence[str], probes: Sequence[datetime]) -> set[str]:
        """The Meeting IDs of ``pools`` that anyone holds at the ``probes`` (see
        :func:`~vcs_allocator.domain.probe_slots`): the availability hint.

        One query per pool and UTC day the probes touch (one or two days), each
        an equality on the single-field-indexed ``pool_day`` (the only kind of
        filter the embedded store serves from an index), narrowed by the probes'
        slot keys; it reads that pool's slots of that day, never the whole
        collection. Only a hint: the unique index decides a claim.
        """
        by_day: dict[int, list[int]] = {}
        for probe in probes:
            key = slot_key(probe)
            by_day.setdefault(key // MINUTES_PER_DAY, []).append(key)
        busy: set[str] = set()
        for pool in pools:
            for day, keys in sorted(by_day.items()):
                cursor = self.slots.find(
                    {"pool_day": f"{pool}|{day}", "slot": {"$in": keys}},
                    {"meeting_id": 1, "_id": 0},
                )
                busy.update([doc["meeting_id"] async for doc in cursor])
        return busy

    async def claim(
        self,
        meeting_id: str,
        request_id: str,
        slots: Sequence[datetime],
        *,
        adopt: bool = False,
        pool: str | None = None,
    ) -> bool:
        """Holds every slot for ``request_id``, or none of the ones it inserted; True if ours.

        With ``adopt``, the slots this request already holds in this room (a
        crashed attempt's) are taken over first instead of inserted again. With
        ``pool`` (the room's), each slot carries its :func:`pool_day` key, which
        :meth:`busy_rooms` finds through its own index.

        A slot someone holds ends the claim (False), whoever that is, without asking: another
        request's, a duplicate delivery's of this one (the handler strikes the room off and
        one decision settles which room the request keeps), or one freed just after refusing
        this insert (the handler reads the room again before it refuses the request). Asking
        cost a ``find_one`` per lost race, and lost races are what several allocator
        processes add.
        """
        attempt = uuid.uuid4().hex
        now = epoch_ms(datetime.now(UTC))
        wanted = sorted(slots)
        adopted: set[datetime] = set()
        if adopt:
            adopted = await self._adopt(meeting_id, request_id, wanted, attempt, now)
        docs = [
            slot_document(meeting_id, request_id, slot, attempt=attempt, claimed_ms=now, pool=pool)
            for slot in wanted
            if slot not in adopted
        ]
        if not docs:
            return True
        try:
            await self.slots.insert_many(docs, ordered=True)
        except BulkWriteError as exc:
            # Ordered: the first error's index is the slot that stopped the insert, whichever
            # unique index (``_id`` or the compound one) refused it; nx-27017 reports no
            # ``keyValue``, both stores report the index.
            first = exc.details["writeErrors"][0]
            await self._undo([doc["_id"] for doc in docs[: int(first["index"])]], attempt)
            if first.get("code") != DUPLICATE_KEY:
                raise
            return False
        return True

    async def _adopt(
        self,
        meeting_id: str,
        request_id: str,
        slots: Sequence[datetime],
        attempt: str,
        now: int,
    ) -> set[datetime]:
        """Takes over this request's slots in the room; returns the ones that are still there.

        The slots are contiguous, so a range selects them.
        """
        query = {
            "meeting_id": meeting_id,
            "request_id": request_id,
            "slot": {"$gte": slot_key(slots[0]), "$lte": slot_key(slots[-1])},
        }
        await self.slots.update_many(query, {"$set": {"attempt": attempt, "claimed_ms": now}})
        cursor = self.slots.find({**query, "attempt": attempt}, {"slot": 1, "_id": 0})
        return {slot_time(doc["slot"]) async for doc in cursor}

    async def _undo(self, inserted: list[str], attempt: str) -> None:
        """Deletes what this attempt inserted and still owns (not what a duplicate took over)."""
        if inserted:
            await self.slots.delete_many({"_id": {"$in": inserted}, "attempt": attempt})

    async def record_decision(
        self, decision: Decision, announcement: Announcement = SILENT
    ) -> Decision | None:
        """Stores the decision with the events announcing it, then publishes them; returns the
        decision already stored instead if another process was first (nothing written)."""
        try:
            await self._outbox.insert(decision_to_document(decision), announcement)
        except DuplicateKeyError:
            return await self.decision(decision.request_id)
        return None

    async def release_slots(
        self, request_id: str, meeting_id: str, *, starting: datetime, slot: timedelta
    ) -> int:
        """Frees the request's slots in its room from ``starting`` on; the ones before it stay
        held, at least :data:`~vcs_allocator.domain.KEY_STRIDE` of them.

        The part kept must be a reservation like any other, keyed at its end too (see
        :func:`~vcs_allocator.domain.claim_keys`): those keys are inserted before anything is
        deleted, so the kept part is never open to an overlapping claim. Nobody else can hold
        them: they lie inside this request's span, which no other claim overlaps.
        """
        query: Document = {"request_id": request_id, "meeting_id": meeting_id}
        fields = {"slot": 1, "pool_day": 1, "confirmed": 1, "_id": 0}
        held = {doc["slot"]: doc async for doc in self.slots.find(query, fields)}
        if not held:
            return 0
        first, last = slot_time(min(held)), slot_time(max(held))
        if starting > first:
            starting, tail = kept_keys(first, starting, slot)
            model = held[min(held)]  # the kept keys are held like the claim's first slot
            pool = str(model["pool_day"]).split("|")[0] if "pool_day" in model else None
            now = epoch_ms(datetime.now(UTC))
            await _insert_new(
                self.slots,
                [
                    slot_document(
                        meeting_id,
                        request_id,
                        key,
                        attempt="kept",
                        claimed_ms=now,
                        confirmed=bool(model.get("confirmed", False)),
                        pool=pool,
                    )
                    for key in tail
                    if key <= last and slot_key(key) not in held
                ],
            )
        result = await self.slots.delete_many({**query, "slot": {"$gte": slot_key(starting)}})
        return result.deleted_count

    async def release_claim(self, meeting_id: str, request_id: str) -> None:
        await self.slots.delete_many({"meeting_id": meeting_id, "request_id": request_id})

    async def mark_released(
        self, request_id: str, at: datetime, announcement: Announcement
    ) -> bool:
        """Marks the request's assignment released, with its events; False if it already was."""

        def change(current: Document) -> Change | None:
            if current.get("released"):
                return None
            return Change({"released": True, "release": {"at": at}}, guard={"released": False})

        projection = {"outbox": 1, "outbox_count": 1, "released": 1}
        changed = await self._outbox.update(request_id, change, announcement, projection=projection)
        return changed is not None and changed.written

    async def move(self, moved: Decision, old_meeting_id: str, announcement: Announcement) -> bool:
        """Switches the decision to its new room, with the events announcing it, if it still
        holds ``old_meeting_id`` unreleased (compare-and-set); False if it changed meanwhile
        (cancelled, or moved by someone else)."""
        if moved.room is None:
            raise ValueError("a moved decision names its room")
        room = moved.room

        def change(current: Document) -> Change | None:
            if current.get("meeting_id") != old_meeting_id or current.get("released"):
                return None
            fields = {
                "meeting_id": room.meeting_id,
                "capacity": room.capacity,
                "pool": room.pool,
                "reassignments": moved.reassignments,
            }
            return Change(fields, guard={"meeting_id": old_meeting_id, "released": False})

        projection = {"outbox": 1, "outbox_count": 1, "released": 1, "meeting_id": 1}
        changed = await self._outbox.update(
            moved.request_id, change, announcement, projection=projection
        )
        return changed is not None and changed.written

    async def unconfirm(self, meeting_id: str, request_id: str) -> None:
        """Hands a request's slots in a room back to the orphan sweeper, with a fresh lease:
        after the lease it confirms them if the decision still holds the room, else frees
        them. A reassign does this to the old room first, so a crash after switching rooms
        cannot leave the old room held for good."""
        await self.slots.update_many(
            {"meeting_id": meeting_id, "request_id": request_id},
            {"$set": {"confirmed": False, "claimed_ms": epoch_ms(datetime.now(UTC))}},
        )

    async def sweep_orphans(self, lease: timedelta, *, batch: int = 5000) -> Sweep:
        """Confirms slots whose request was decided for them, frees the rest after ``lease``.

        Three round trips per batch: the unconfirmed slots older than the
        lease, the decisions of their requests, and one bulk write. A delete
        matches only slots still older than the lease, so slots a redelivery
        adopted meanwhile (fresh ``claimed_ms``) survive.
        """
        cutoff = epoch_ms(datetime.now(UTC) - lease)
        stale = {"confirmed": False, "claimed_ms": {"$lt": cutoff}}
        cursor = self.slots.find(stale, {"request_id": 1, "meeting_id": 1, "_id": 0}).limit(batch)
        found = [(doc["request_id"], doc["meeting_id"]) async for doc in cursor]
        holders = set(found)
        if not holders:
            return Sweep(0, 0, full=False)
        held = {
            doc["_id"]: decision_from_document(doc).held_meeting_id
            async for doc in self.decisions.find(
                {"_id": {"$in": sorted({request_id for request_id, _ in holders})}},
                {"outbox": 0},
            )
        }
        operations: list[UpdateMany | DeleteMany] = []
        confirmed = freed = 0
        for request_id, meeting_id in sorted(holders):
            query = {"request_id": request_id, "meeting_id": meeting_id, **stale}
            if held.get(request_id) == meeting_id:
                operations.append(UpdateMany(query, {"$set": {"confirmed": True}}))
                confirmed += 1
            else:
                operations.append(DeleteMany(query))
                freed += 1
        await self.slots.bulk_write(operations, ordered=False)
        return Sweep(confirmed, freed, full=len(found) == batch)

    async def replace_rooms(
        self, rooms: Sequence[Room], *, may_change: Callable[[str], bool] = lambda _: True
    ) -> PoolChange:
        """Makes the pools named in ``rooms`` equal to it, all or nothing, one reload at a
        time (:meth:`vcs_allocator.pool_store.PoolStore.replace`)."""
        return await self.pools.replace(rooms, may_change=may_change)

    async def all_rooms(self, pool: str | None = None) -> list[Room]:
        """Every current room (active or not), by pool, capacity and Meeting ID."""
        return await self.pools.all_rooms(pool)

    async def reservations(
        self, start: datetime, end: datetime, meeting_id: str | None = None
    ) -> list[Reservation]:
        """Live reservations (assigned, not released) whose window overlaps [start, end)."""
        query: Document = {**LIVE_ASSIGNMENT, "starts_at": {"$lt": end}, "ends_at": {"$gt": start}}
        if meeting_id is not None:
            query["meeting_id"] = meeting_id
        cursor = self.decisions.find(query, {"outbox": 0})
        found = [decision_from_document(doc).reservation async for doc in cursor]
        live = [reservation for reservation in found if reservation is not None]
        return sorted(live, key=lambda r: (r.starts_at, r.meeting_id))

    async def decisions_of_day(self, day: date) -> list[Decision]:
        """Every decision of one Bangkok day (:func:`decision_day`), on the single-field index
        ``day``: utilisation reads one equality query per day."""
        cursor = self.decisions.find({"day": day.isoformat()}, {"outbox": 0})
        return [decision_from_document(doc) async for doc in cursor]

    async def room_count(self) -> int:
        return await self.pools.room_count()


def decision_to_document(decision: Decision) -> Document:
    """The decision's document: its request, what was asked, what was decided."""
    document: Document = {
        "_id": decision.request_id,
        "request_id": decision.request_id,  # what it is about, whatever its key (tests count it)
        "province_code": decision.province_code,
        "district_code": decision.district_code,
    }
    if decision.booking is not None:
        document["starts_at"] = decision.booking.starts_at
        document["ends_at"] = decision.booking.ends_at
        document["participants"] = decision.booking.participants
    document["decided_at"] = decision.decided_at
    document["day"] = decision_day(decision)
    document["released"] = decision.released
    document["outcome"] = decision.outcome.value
    if decision.room is not None:
        document["meeting_id"] = decision.room.meeting_id
        document["capacity"] = decision.room.capacity
        document["pool"] = decision.room.pool
    if decision.reason is not None:
        document["reason"] = decision.reason.value
    document["reassignments"] = decision.reassignments
    return document


def decision_day(decision: Decision) -> str:
    """The Bangkok day a decision counts on in utilisation (``2026-12-05``): its meeting's start,
    or when it was decided if it names no window. A day string, not a datetime, because the
    embedded store serves an equality on it from a single-field index; set in the document
    the allocator writes anyway, so it costs the hot path no store command."""
    moment = decision.booking.starts_at if decision.booking is not None else decision.decided_at
    return moment.astimezone(BANGKOK).date().isoformat()


def decision_from_document(doc: Document) -> Decision:
    booking = room = None
    if "starts_at" in doc:
        booking = Booking(doc["starts_at"], doc["ends_at"], doc["participants"])
    if "meeting_id" in doc:
        room = AssignedRoom(doc["meeting_id"], doc["capacity"], doc["pool"])
    return Decision(
        request_id=doc["_id"],
        province_code=doc["province_code"],
        district_code=doc["district_code"],
        outcome=DecisionOutcome(doc["outcome"]),
        decided_at=doc["decided_at"],
        released=doc["released"],
        booking=booking,
        room=room,
        reason=RejectionReason(doc["reason"]) if "reason" in doc else None,
        reassignments=int(doc.get("reassignments", 0)),
    )


def slot_id(meeting_id: str, key: int) -> str:
    """A slot document's ``_id``: its room and :func:`slot_key` (``"3475946456|29413380"``).
    Derived, so the occupancy probe names the documents it looks for; a Meeting ID is
    digits, so the ``|`` cannot be part of it."""
    return f"{meeting_id}|{key}"


async def _insert_new(collection: AsyncCollection[Document], documents: list[Document]) -> None:
    """Inserts the documents not stored yet (unordered): a duplicate key is skipped."""
    if not documents:
        return
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        raise_unless_duplicates(exc)


def slot_document(
    meeting_id: str,
    request_id: str,
    slot: datetime,
    *,
    attempt: str,
    claimed_ms: int,
    confirmed: bool = False,
    pool: str | None = None,
) -> Document:
    """The document of one slot key a claim holds: with ``pool`` (the room's), also its
    :func:`pool_day` key, which :meth:`MongoReservationStore.busy_rooms` finds."""
    document: Document = {
        "_id": slot_id(meeting_id, slot_key(slot)),
        "meeting_id": meeting_id,
        "slot": slot_key(slot),
        "request_id": request_id,
        "attempt": attempt,
        "claimed_ms": claimed_ms,
        "confirmed": confirmed,
    }
    if pool is not None:
        document["pool_day"] = pool_day(pool, slot)
    return document


def slot_key(moment: datetime) -> int:
    """A slot's key in the unique index: its start in whole minutes since the epoch (UTC).

    An integer rather than a datetime because the embedded store evaluates any
    filter on a datetime by decoding every document of the collection (2 s per
    query at 24,000 slots against 0.2 s with integers, measured by the benchmark),
    which made each allocation cost time proportional to all bookings so far.
    """
    return int(moment.timestamp()) // 60


def pool_day(pool: str, slot: datetime) -> str:
    """The key of a pool's slots of one UTC day (``47|20425``), indexed on its own: the
    availability of a province is one equality query per pool and day, which the embedded
    store serves from a single-field index (it cannot use the compound one, nor ``$in``)."""
    return f"{pool}|{slot_key(slot) // MINUTES_PER_DAY}"


def slot_time(key: int) -> datetime:
    return datetime.fromtimestamp(key * 60, UTC)
