"""The allocator's reservation store against whatever store is configured.

The double-booking guarantee rests on these semantics of
:class:`~vcs_allocator.store.MongoReservationStore` (ordered claims stopping at
the first taken slot, rollback of exactly what an attempt inserted, adoption,
the lease-guarded sweep, pool replacement). They run against ``nx-27017`` by
default and against a real MongoDB when ``VCS_MONGODB_URL`` is set.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from vcs_allocator.domain import (
    AllocationPolicy,
    AssignedRoom,
    Booking,
    Decision,
    DecisionOutcome,
    Room,
    Span,
    claim_keys,
    occupied_span,
    probe_slots,
)
from vcs_allocator.store import MongoReservationStore, slot_id, slot_key, slot_time
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.contract

POLICY = AllocationPolicy()
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
ROOM_A = "111111111"
ROOM_B = "2222222222"


def span(start_minutes: int, minutes: int = 60) -> Span:
    start = T0 + timedelta(minutes=start_minutes)
    return occupied_span(start, start + timedelta(minutes=minutes), POLICY)


def window(start_minutes: int, minutes: int = 60) -> list[datetime]:
    """The slots a claim of this window inserts."""
    return claim_keys(span(start_minutes, minutes), POLICY.slot)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def assignment(
    request_id: str, meeting_id: str, *, hour: int = 0, released: bool = False
) -> Decision:
    """A decision assigning ``meeting_id`` for two hours from ``T0 + hour``."""
    starts_at = T0 + timedelta(hours=hour)
    return Decision(
        request_id=request_id,
        province_code="47",
        district_code="4701",
        outcome=DecisionOutcome.assigned,
        decided_at=T0,
        released=released,
        booking=Booking(starts_at, starts_at + timedelta(hours=2), 100),
        room=AssignedRoom(meeting_id, 300, "47"),
    )


@pytest.fixture
async def store(mongo: AsyncMongoClient[Document], namespace: str) -> MongoReservationStore:
    store = MongoReservationStore(mongo[database_name(namespace, "allocator")])
    await store.ensure_indexes()
    return store


async def holders(store: MongoReservationStore, meeting_id: str) -> dict[datetime, str]:
    cursor = store.slots.find({"meeting_id": meeting_id})
    return {slot_time(doc["slot"]): doc["request_id"] async for doc in cursor}


async def test_a_claim_overlapping_another_fails_and_leaves_nothing_behind(
    store: MongoReservationStore,
) -> None:
    assert await store.claim(ROOM_A, "r1", window(60))

    assert not await store.claim(ROOM_A, "r2", window(0))  # its last slots are r1's
    assert not await store.claim(ROOM_A, "r3", window(90))  # its first slots are r1's
    assert await store.claim(ROOM_A, "r4", window(60 + 60 + 15))  # one buffer after r1

    held = await holders(store, ROOM_A)
    assert set(held.values()) == {"r1", "r4"}
    assert len(held) == 2 * len(window(60))


async def test_racing_claims_for_one_room_leave_exactly_one_holder(
    store: MongoReservationStore,
) -> None:
    results = await asyncio.gather(
        *(store.claim(ROOM_A, f"r{i}", window(5 * (i % 4))) for i in range(12))
    )

    winners = {f"r{i}" for i, won in enumerate(results) if won}
    held = await holders(store, ROOM_A)
    assert set(held.values()) == winners
    assert len(winners) == 1
    assert len(held) == len(window(5 * (int(winners.pop()[1:]) % 4)))


async def test_occupancy_sees_other_holders_at_the_probes_and_what_the_request_holds(
    store: MongoReservationStore,
) -> None:
    await store.claim(ROOM_A, "r1", window(100, minutes=1))  # the shortest reservation
    await store.claim(ROOM_B, "mine", window(0))
    probes = probe_slots(span(0, minutes=240), POLICY.slot)

    seen = await store.occupancy([ROOM_A, ROOM_B], probes, "mine")

    assert seen.busy == {ROOM_A}
    assert seen.held == {ROOM_B}


async def test_slots_are_keyed_by_room_and_slot_and_the_probe_finds_them_by_that_id(
    store: MongoReservationStore,
) -> None:
    slots = window(0)
    await store.claim(ROOM_A, "r1", slots)

    ids = {doc["_id"] async for doc in store.slots.find({"meeting_id": ROOM_A})}
    assert ids == {f"{ROOM_A}|{slot_key(slot)}" for slot in slots}
    await store.slots.update_one({"_id": f"{ROOM_A}|{slot_key(slots[0])}"}, {"$set": {"slot": -1}})
    seen = await store.occupancy([ROOM_A], slots[:1], "mine")
    assert seen.busy == {ROOM_A}  # found by _id alone, whatever ``slot`` says


def pre_upgrade(meeting_id: str, request_id: str, slots: list[datetime]) -> list[Document]:
    """Slot documents as allocators wrote them before slot ids: an ObjectId ``_id``."""
    return [
        {
            "_id": ObjectId(),
            "meeting_id": meeting_id,
            "slot": slot_key(slot),
            "request_id": request_id,
            "attempt": "old",
            "claimed_ms": epoch_ms(T0),
            "confirmed": True,
        }
        for slot in slots
    ]


async def test_a_claim_meeting_a_slot_written_before_slot_ids_fails_and_leaves_nothing(
    store: MongoReservationStore,
) -> None:
    """The unique (meeting_id, slot) index refuses it (a slot id it does not have), and the
    claim gives back the slots it inserted before meeting it."""
    await store.slots.insert_many(pre_upgrade(ROOM_A, "old", window(60)))

    assert not await store.claim(ROOM_A, "r2", window(0))

    assert set((await holders(store, ROOM_A)).values()) == {"old"}


async def test_rekeying_gives_old_slots_their_slot_id_once_and_the_probe_then_sees_them(
    store: MongoReservationStore,
) -> None:
    old = pre_upgrade(ROOM_A, "old", window(0)) + pre_upgrade(ROOM_B, "other", window(0))
    await store.slots.insert_many(old)

    assert await store.rekey_slots() == len(old)
    assert await store.rekey_slots() == 0

    docs = [doc async for doc in store.slots.find({})]
    assert {doc["_id"] for doc in docs} == {slot_id(d["meeting_id"], d["slot"]) for d in old}
    assert all(doc["confirmed"] and doc["attempt"] == "old" for doc in docs)
    seen = await store.occupancy([ROOM_A, ROOM_B], probe_slots(span(0), POLICY.slot), "other")
    assert seen.busy == {ROOM_A}
    assert seen.held == {ROOM_B}
    assert await store.rekeying.count_documents({}) == 0


@pytest.mark.parametrize("deleted", [False, True], ids=["copied", "old-deleted"])
async def test_rekeying_interrupted_mid_round_is_finished_by_the_next_start(
    store: MongoReservationStore, deleted: bool
) -> None:
    """A start that crashed after copying a round (and perhaps deleting the old documents)
    leaves the copy; the next start puts every slot back under its slot id."""
    old = pre_upgrade(ROOM_A, "old", window(0))
    await store.slots.insert_many(old)
    copies = [
        {**doc, "_id": slot_id(doc["meeting_id"], doc["slot"]), "old_id": doc["_id"]} for doc in old
    ]
    await store.rekeying.insert_many(copies)
    if deleted:
        await store.slots.delete_many({})

    await store.rekey_slots()

    ids = {doc["_id"] async for doc in store.slots.find({})}
    assert ids == {copy["_id"] for copy in copies}
    assert await store.rekeying.count_documents({}) == 0


async def test_busy_rooms_finds_a_pool_s_holders_at_the_probes_also_across_utc_midnight(
    store: MongoReservationStore,
) -> None:
    """The availability query: one indexed equality on ``pool_day`` per pool and UTC day."""
    midnight = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # 07:00 in Bangkok
    before = occupied_span(midnight - timedelta(hours=1), midnight - timedelta(minutes=30), POLICY)
    after = occupied_span(midnight + timedelta(minutes=30), midnight + timedelta(hours=1), POLICY)
    await store.claim(ROOM_A, "r1", claim_keys(before, POLICY.slot), pool="47")
    await store.claim(ROOM_B, "r2", claim_keys(after, POLICY.slot), pool="region-12")
    await store.claim("3333333333", "r3", claim_keys(after, POLICY.slot), pool="48")
    across = occupied_span(midnight - timedelta(hours=2), midnight + timedelta(hours=2), POLICY)
    probes = probe_slots(across, POLICY.slot)
    later = occupied_span(midnight + timedelta(hours=3), midnight + timedelta(hours=4), POLICY)

    assert await store.busy_rooms(["47", "region-12"], probes) == {ROOM_A, ROOM_B}
    assert await store.busy_rooms(["47"], probes) == {ROOM_A}
    assert await store.busy_rooms(["47", "region-12"], probe_slots(later, POLICY.slot)) == set()
    index_keys = [index["key"] async for index in await store.slots.list_indexes()]
    assert {"pool_day": 1} in [dict(key) for key in index_keys]  # served by its own index


async def test_a_redelivery_adopts_the_slots_its_request_holds_and_completes_them(
    store: MongoReservationStore,
) -> None:
    slots = window(0)
    await store.claim(ROOM_A, "r1", slots[: len(slots) // 2])
    # A mark the store never writes: it survives an adoption, not a delete and insert again
    # (which would keep the derived _id).
    await store.slots.update_many({"request_id": "r1"}, {"$set": {"left_by": "crashed"}})

    assert await store.claim(ROOM_A, "r1", slots, adopt=True)

    docs = [doc async for doc in store.slots.find({"request_id": "r1"})]
    assert len(docs) == len(slots)
    assert sum(doc.get("left_by") == "crashed" for doc in docs) == len(slots) // 2
    assert len({doc["attempt"] for doc in docs}) == 1  # all taken over by the new attempt


async def test_a_duplicate_delivery_claiming_alongside_does_not_undo_the_other(
    store: MongoReservationStore,
) -> None:
    """Without ``adopt`` (it read before the other inserted), a claim meeting its own
    request's slots is refused like any other (the handler claims another room, and the
    request's decision settles which one it keeps), and leaves the other's slots as they
    were: it deletes only what its own attempt inserted."""
    slots = window(0)
    await store.claim(ROOM_A, "r1", slots[3:5])
    before = [doc async for doc in store.slots.find({}, sort=[("slot", 1)])]

    assert not await store.claim(ROOM_A, "r1", slots)

    assert [doc async for doc in store.slots.find({}, sort=[("slot", 1)])] == before


async def test_the_sweeper_frees_undecided_claims_after_the_lease_and_confirms_decided_ones(
    store: MongoReservationStore,
) -> None:
    await store.claim(ROOM_A, "crashed", window(0))
    await store.claim(ROOM_B, "decided", window(0))
    await store.record_decision(assignment("decided", ROOM_B))

    young = await store.sweep_orphans(timedelta(minutes=10))
    assert (young.confirmed, young.freed) == (0, 0)

    await store.slots.update_many(
        {}, {"$set": {"claimed_ms": epoch_ms(datetime.now(UTC) - timedelta(hours=1))}}
    )
    old = await store.sweep_orphans(timedelta(minutes=10))
    assert (old.confirmed, old.freed) == (1, 1)
    assert await holders(store, ROOM_A) == {}
    assert set((await holders(store, ROOM_B)).values()) == {"decided"}
    assert await store.slots.count_documents({"confirmed": False}) == 0


async def test_a_claim_adopted_after_the_sweeper_looked_survives_its_delete(
    store: MongoReservationStore,
) -> None:
    slots = window(0)
    await store.claim(ROOM_A, "r1", slots)
    await store.slots.update_many(
        {}, {"$set": {"claimed_ms": epoch_ms(datetime.now(UTC) - timedelta(days=1))}}
    )
    assert await store.claim(ROOM_A, "r1", slots, adopt=True)  # fresh claimed_ms

    swept = await store.sweep_orphans(timedelta(minutes=10))

    assert swept.freed == 0
    assert len(await holders(store, ROOM_A)) == len(slots)


async def test_replacing_a_pool_deactivates_only_the_named_pools_missing_rooms(
    store: MongoReservationStore,
) -> None:
    def room(meeting_id: str, pool: str, capacity: int = 300) -> Room:
        return Room(meeting_id, capacity, pool, f"https://z.example/j/{meeting_id}", "sealed")

    await store.replace_rooms(
        [room("100000001", "47"), room("100000002", "47"), room(ROOM_A, "48")]
    )

    change = await store.replace_rooms([room("100000001", "47", 500), room("100000003", "47")])

    assert (change.pools, change.loaded, change.deactivated) == (("47",), 2, 1)
    stored = {r.meeting_id: (r.capacity, r.active) for r in await store.all_rooms()}
    assert stored == {
        "100000001": (500, True),
        "100000002": (300, False),
        "100000003": (300, True),
        ROOM_A: (300, True),
    }
    assert {r.meeting_id for r in await store.rooms(["47"])} == {"100000001", "100000003"}


async def test_reservations_are_the_live_assignments_overlapping_a_period(
    store: MongoReservationStore,
) -> None:
    await store.record_decision(assignment("r1", ROOM_A, hour=0))
    await store.record_decision(assignment("r2", ROOM_A, hour=30))
    await store.record_decision(assignment("r3", ROOM_A, hour=1, released=True))
    await store.record_decision(assignment("r4", ROOM_B, hour=1))
    await store.record_decision(Decision("r5", "47", "4701", DecisionOutcome.rejected, T0))

    found = await store.reservations(T0 - timedelta(hours=1), T0 + timedelta(hours=1), ROOM_A)
    everyone = await store.reservations(T0, T0 + timedelta(days=1))

    assert [r.request_id for r in found] == ["r1"]
    assert [r.request_id for r in everyone] == ["r1", "r4"]


async def test_a_meeting_cancelled_under_way_keeps_its_slots_before_the_release_keyed_to_the_end(
    store: MongoReservationStore,
) -> None:
    """The kept part is blocked up to its end, where the claim had no keys of its own (02:25
    and 02:30 lie between the stride slots), and it keeps at least four slots."""
    await store.claim(ROOM_A, "r1", window(0, minutes=120), pool="47")  # 02:00-04:15 UTC
    await store.claim(ROOM_B, "r2", window(0, minutes=120), pool="47")

    await store.release_slots("r1", ROOM_A, starting=T0 + timedelta(minutes=35), slot=POLICY.slot)
    await store.release_slots("r2", ROOM_B, starting=T0 + timedelta(minutes=5), slot=POLICY.slot)

    kept = [slot_time(doc["slot"]) async for doc in store.slots.find({"request_id": "r1"})]
    assert max(kept) == T0 + timedelta(minutes=30)
    assert not await store.claim(ROOM_A, "late", window(25, minutes=30))  # 02:25-03:10
    assert await store.claim(ROOM_A, "next", window(35, minutes=30))  # from 02:35
    assert not await store.claim(ROOM_B, "late", window(15, minutes=30))  # four slots kept
    assert await store.claim(ROOM_B, "next", window(20, minutes=30))
