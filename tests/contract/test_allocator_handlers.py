"""The allocator's handler on the real store, in this process: it decides by the clock it is
given, and its decision and the event announcing it are one document (the outbox), waiting
for a relay to publish it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.support.events import request_submitted
from tests.support.store_commands import CommandsTo
from vcs_allocator.domain import (
    AllocationPolicy,
    DecisionOutcome,
    PoolEntry,
    best_fit_order,
    claim_keys,
    occupied_span,
    probe_slots,
)
from vcs_allocator.handlers import HANDLERS, AllocatorDeps
from vcs_allocator.store import MongoReservationStore
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.envelope import Envelope
from vcs_shared.events import RequestSubmitted, RoomAssigned
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.contract

NOW = datetime(2020, 4, 13, 2, 0, tzinfo=UTC)  # the circular's day: long past by the real clock


async def test_the_allocator_decides_by_its_clock_and_stores_its_event_with_the_decision(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    store = MongoReservationStore(mongo[database_name(namespace, "allocator")])
    await store.ensure_indexes()
    sealer = CredentialsSealer(credentials_keys)
    entry = PoolEntry("111111111", 300, "47", "s3cretPass", "https://z.example/j/1?pwd=s3cretPass")
    await store.replace_rooms([entry.sealed(sealer)])
    deps = AllocatorDeps(
        store=store,
        sealer=sealer,
        policy=AllocationPolicy(),
        clock=lambda: NOW,
    )
    event = request_submitted(str(uuid.uuid4()), NOW + timedelta(days=1), participants=100)
    handler = HANDLERS.bind(deps).handler_for(event)
    assert handler is not None

    await handler(Envelope(str(uuid.uuid4()), event, NOW, "/dopa-vcs/intake", "corr-1"))

    decision = await store.decision(event.request_id)
    assert decision is not None
    assert decision.outcome is DecisionOutcome.assigned  # not "starts in the past"
    assert decision.decided_at == NOW
    stored = await store.decisions.find_one({"_id": event.request_id})
    assert stored is not None
    [entry] = stored["outbox"]
    assert stored["outbox_pending"] is True  # this process publishes nothing
    assert entry["routing_key"] == "room.assigned.47.4701"
    body = json.loads(entry["body"])
    assert body["type"] == RoomAssigned.cloudevent_type()
    assert body["correlationid"] == "corr-1"
    assert body["data"]["meeting_id"] == "111111111"
    assert body["data"]["join_url"] == "https://z.example/j/1"
    assert sealer.open(body["data"]["sealed_credentials"]).passcode == "s3cretPass"


async def test_passcodes_are_stored_sealed_and_opened_only_for_a_booking(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    """Issue 11.5: the rooms collection holds no passcode and no passcode-bearing URL."""
    store = MongoReservationStore(mongo[database_name(namespace, "allocator")])
    await store.ensure_indexes()
    sealer = CredentialsSealer(credentials_keys)
    entries = [
        PoolEntry("222222222", 300, "47", "Pa55-one", "https://z.example/j/2?pwd=Pa55-one"),
        PoolEntry("333333333", 500, "47", "Pa55-two", "https://z.example/j/3#pwd=Pa55-two"),
    ]

    await store.replace_rooms([entry.sealed(sealer) for entry in entries])

    stored = [doc async for doc in store.pools.rooms_collection.find({})]
    assert len(stored) == 2
    assert not any("Pa55" in repr(doc) for doc in stored)
    rooms = {room.meeting_id: room for room in await store.rooms(["47"])}
    assert rooms["333333333"].public_join_url == "https://z.example/j/3"
    opened = sealer.open(rooms["222222222"].sealed_credentials)
    assert (opened.passcode, opened.join_url) == ("Pa55-one", entries[0].join_url)


async def test_a_redelivered_request_keeps_its_decision_and_announces_nothing_new(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    """Without reading the decision first: an assigned request's copy finds its own slots and
    stops before claiming; a request rejected for want of a room stays rejected when its copy
    comes after the room was freed, and gives back what that copy claimed."""
    store = MongoReservationStore(mongo[database_name(namespace, "allocator")])
    await store.ensure_indexes()
    sealer = CredentialsSealer(credentials_keys)
    entry = PoolEntry("111111111", 300, "47", "s3cretPass", "https://z.example/j/1?pwd=s3cretPass")
    await store.replace_rooms([entry.sealed(sealer)])
    deps = AllocatorDeps(store=store, sealer=sealer, policy=AllocationPolicy(), clock=lambda: NOW)
    starts = NOW + timedelta(days=1)
    first = request_submitted(str(uuid.uuid4()), starts, participants=100)
    second = request_submitted(str(uuid.uuid4()), starts, participants=100)
    envelopes = {
        event.request_id: Envelope(str(uuid.uuid4()), event, NOW, "/dopa-vcs/intake", "corr")
        for event in (first, second)
    }
    handler = HANDLERS.bind(deps).handler_for(first)
    assert handler is not None

    async def stored(request_id: str) -> tuple[str, int, list[Document]]:
        decision = await store.decisions.find_one({"_id": request_id})
        assert decision is not None
        slots = [s async for s in store.slots.find({"request_id": request_id})]
        return decision["outcome"], len(decision["outbox"]), slots

    for request_id in (first.request_id, second.request_id):
        await handler(envelopes[request_id])
    assigned = await stored(first.request_id)
    assert assigned[:2] == ("assigned", 1)
    assert await stored(second.request_id) == ("rejected", 1, [])

    await handler(envelopes[first.request_id])
    assert await stored(first.request_id) == assigned  # same slots, same attempt: not claimed

    room = assigned[2][0]["meeting_id"]
    await store.release_slots(first.request_id, room, starting=NOW, slot=deps.policy.slot)
    # the room is free again
    await handler(envelopes[second.request_id])
    assert await stored(second.request_id) == ("rejected", 1, [])


async def test_concurrent_allocations_of_one_process_take_different_rooms_without_racing(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    """A burst of one province's requests for one window, all handled at once in one process:
    each takes a room of its own, and none loses a claim at the unique index (they steer
    clear of the rooms the others are claiming)."""
    store, sealer, meeting_ids = await with_rooms(
        mongo[database_name(namespace, "allocator")], credentials_keys, 8
    )
    await store.pools.warm()
    deps = AllocatorDeps(store=store, sealer=sealer, policy=AllocationPolicy(), clock=lambda: NOW)
    handler = HANDLERS.bind(deps).handler_for(request_submitted("x", NOW))
    assert handler is not None
    events = [
        request_submitted(str(uuid.uuid4()), NOW + timedelta(days=1), participants=250)
        for _ in meeting_ids
    ]
    races_before = REGISTRY.get_sample_value("vcs_claim_races_lost_total") or 0.0

    await asyncio.gather(
        *(handler(Envelope(str(uuid.uuid4()), e, NOW, "/dopa-vcs/intake", None)) for e in events)
    )

    decisions = [await store.decision(e.request_id) for e in events]
    rooms = {d.held_meeting_id for d in decisions if d is not None}
    assert rooms == set(meeting_ids)
    assert REGISTRY.get_sample_value("vcs_claim_races_lost_total") == races_before


async def test_rooms_read_before_consuming_are_the_rooms_an_allocation_would_read(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    db = mongo[database_name(namespace, "allocator")]
    loader = MongoReservationStore(db)
    await loader.ensure_indexes()
    sealer = CredentialsSealer(credentials_keys)
    entries = [
        PoolEntry("470000001", 300, "47", "s3cretPass", "https://z.example/j/1"),
        PoolEntry("480000001", 500, "48", "s3cretPass", "https://z.example/j/2"),
    ]
    await loader.replace_rooms([entry.sealed(sealer) for entry in entries])
    warmed, cold = MongoReservationStore(db), MongoReservationStore(db)

    await warmed.pools.warm()
    await loader.pools.rooms_collection.delete_many({})  # only what warm() read is left

    assert [r.meeting_id for r in await warmed.rooms(["47", "48"])] == ["470000001", "480000001"]
    assert await cold.rooms(["47", "48"]) == []


async def test_an_allocation_reads_four_rooms_whole_and_more_only_while_none_is_free(
    mongodb_url: str, namespace: str, credentials_keys: str
) -> None:
    """12 fitting rooms: the first read asks for 4 rooms at every probe slot and the other 8
    at the first one; with those 4 taken, a second read asks for the next 4, and best fit's
    choice is the first free room of its order."""
    reads = CommandsTo("find", "slots")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[reads]
    )
    try:
        db = client[database_name(namespace, "allocator")]
        store, sealer, _ = await with_rooms(db, credentials_keys, 12)
        policy = AllocationPolicy()
        starts = NOW + timedelta(days=1)
        first, second = (request_submitted(str(uuid.uuid4()), starts) for _ in range(2))
        span = occupied_span(first.starts_at, first.ends_at, policy)
        probes = len(probe_slots(span, policy.slot))
        deps = AllocatorDeps(store=store, sealer=sealer, policy=policy, clock=lambda: NOW)
        reads.sent.clear()  # the set-up's reads (ensure_indexes) are not allocations
        await allocate_in(deps, first)  # every room free: one read
        assigned = await store.decision(first.request_id)
        assert assigned is not None
        assert assigned.held_meeting_id is not None
        held = assigned.held_meeting_id
        rooms = await store.rooms(["47", "region-12"])
        order = best_fit_order(rooms, ["47", "region-12"], second.request_id)
        busy = {held, *[m for m in order if m != held][:4]}
        for index, meeting_id in enumerate(sorted(busy - {held})):  # other allocators' claims
            assert await store.claim(meeting_id, f"other-{index}", claim_keys(span, policy.slot))

        fresh = AllocatorDeps(store=store, sealer=sealer, policy=policy, clock=lambda: NOW)
        await allocate_in(fresh, second)  # as another allocator process: its first 4 taken

        ids = [len(find["filter"]["_id"]["$in"]) for find in reads.sent]
        assert ids == [4 * probes + 8, 4 * probes + 8, 4 * probes]
        decided = await store.decision(second.request_id)
        assert decided is not None
        assert decided.held_meeting_id == next(m for m in order if m not in busy)
    finally:
        await client.close()


async def test_a_read_beyond_the_first_four_rooms_takes_rooms_the_glance_saw_free_first(
    mongodb_url: str, namespace: str, credentials_keys: str
) -> None:
    """12 fitting rooms, the first 8 of this request's order held by another allocator
    process: the first read sees 4 of them whole and the other 4 at a glance, so the second
    read takes the 4 rooms nobody holds instead of those (one read more, not two)."""
    reads = CommandsTo("find", "slots")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[reads]
    )
    try:
        store, sealer, _ = await with_rooms(
            client[database_name(namespace, "allocator")], credentials_keys, 12
        )
        policy = AllocationPolicy()
        event = request_submitted(str(uuid.uuid4()), NOW + timedelta(days=1))
        span = occupied_span(event.starts_at, event.ends_at, policy)
        probes = len(probe_slots(span, policy.slot))
        order = best_fit_order(await store.rooms(["47"]), ["47"], event.request_id)
        for index, meeting_id in enumerate(order[:8]):  # another process's claims
            assert await store.claim(meeting_id, f"other-{index}", claim_keys(span, policy.slot))
        deps = AllocatorDeps(store=store, sealer=sealer, policy=policy, clock=lambda: NOW)
        reads.sent.clear()

        await allocate_in(deps, event)

        assert [len(find["filter"]["_id"]["$in"]) for find in reads.sent] == [
            4 * probes + 8,
            4 * probes,
        ]
        decided = await store.decision(event.request_id)
        assert decided is not None
        assert decided.held_meeting_id == order[8]
    finally:
        await client.close()


class RivalClaimsFirst(MongoReservationStore):
    """The store as an allocation sees it when another allocator process claims the room it
    chose between its read and its claim: ``rival`` runs, once, just before the first claim
    of any other request, and ``after_lost`` just after that claim fails."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        rival: Callable[[str, Sequence[datetime], str | None], Awaitable[None]],
        after_lost: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(db)
        self.rival: Callable[[str, Sequence[datetime], str | None], Awaitable[None]] | None = rival
        self.after_lost = after_lost
        self.rival_request: str | None = None

    async def claim(
        self,
        meeting_id: str,
        request_id: str,
        slots: Sequence[datetime],
        *,
        adopt: bool = False,
        pool: str | None = None,
    ) -> bool:
        rival, self.rival = self.rival, None
        if rival is not None:
            await rival(meeting_id, slots, pool)
        claimed = await super().claim(meeting_id, request_id, slots, adopt=adopt, pool=pool)
        if rival is not None and not claimed and self.after_lost is not None:
            await self.after_lost(meeting_id)
        return claimed


async def test_a_lost_race_claims_the_next_free_room_read_without_reading_again(
    mongodb_url: str, namespace: str, credentials_keys: str
) -> None:
    """Another process claims the chosen room just before this allocation does: the claim is
    refused, and the allocation claims the next free room of its first read, asking nobody
    who holds the slot and reading nothing again (one insert more, no read more)."""
    reads, inserts = CommandsTo("find", "slots"), CommandsTo("insert", "slots")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[reads, inserts]
    )
    try:
        db = client[database_name(namespace, "allocator")]
        _, sealer, _ = await with_rooms(db, credentials_keys, 8)
        rival_rooms: list[str] = []

        async def rival(meeting_id: str, slots: Sequence[datetime], pool: str | None) -> None:
            assert await MongoReservationStore(db).claim(meeting_id, "rival", slots, pool=pool)
            rival_rooms.append(meeting_id)

        store = RivalClaimsFirst(db, rival)
        deps = AllocatorDeps(
            store=store, sealer=sealer, policy=AllocationPolicy(), clock=lambda: NOW
        )
        event = request_submitted(str(uuid.uuid4()), NOW + timedelta(days=1))
        order = best_fit_order(await store.rooms(["47"]), ["47"], event.request_id)
        reads.sent.clear()
        inserts.sent.clear()

        await allocate_in(deps, event)

        assert rival_rooms == order[:1]
        assert len(reads.sent) == 1  # the first read only
        assert len(inserts.sent) == 3  # the rival's claim, the refused one, the next room's
        decided = await store.decision(event.request_id)
        assert decided is not None
        assert decided.held_meeting_id == order[1]
        holders = {(d["meeting_id"], d["request_id"]) async for d in store.slots.find({})}
        assert holders == {(order[0], "rival"), (order[1], event.request_id)}
    finally:
        await client.close()


async def test_a_room_lost_to_a_claim_that_did_not_last_is_read_again_before_refusing(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    """One room; a rival claims it just before this allocation and rolls back just after
    refusing it: with nothing else to claim, the room is read again and claimed, not the
    request refused."""
    db = mongo[database_name(namespace, "allocator")]
    _, sealer, [room] = await with_rooms(db, credentials_keys, 1)
    rival_store = MongoReservationStore(db)

    async def rival(meeting_id: str, slots: Sequence[datetime], pool: str | None) -> None:
        assert await rival_store.claim(meeting_id, "rival", slots, pool=pool)

    async def rolled_back(meeting_id: str) -> None:
        await rival_store.release_claim(meeting_id, "rival")

    store = RivalClaimsFirst(db, rival, rolled_back)
    deps = AllocatorDeps(store=store, sealer=sealer, policy=AllocationPolicy(), clock=lambda: NOW)
    event = request_submitted(str(uuid.uuid4()), NOW + timedelta(days=1))
    races_before = REGISTRY.get_sample_value("vcs_claim_races_lost_total") or 0.0

    await allocate_in(deps, event)

    assert REGISTRY.get_sample_value("vcs_claim_races_lost_total") == races_before + 1
    decided = await store.decision(event.request_id)
    assert decided is not None
    assert decided.held_meeting_id == room


async def test_duplicate_deliveries_in_two_processes_keep_one_room_and_leave_no_slots_behind(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    """The same request delivered to two allocator processes at once: the copy in the other
    process claims the room this one chose and decides first, this one's claim is refused,
    it claims another room, loses the decision and gives that room back. One reservation,
    the request's slots in that room only."""
    db = mongo[database_name(namespace, "allocator")]
    _, sealer, _ = await with_rooms(db, credentials_keys, 4)
    event = request_submitted(str(uuid.uuid4()), NOW + timedelta(days=1))
    policy = AllocationPolicy()
    other = AllocatorDeps(
        store=MongoReservationStore(db), sealer=sealer, policy=policy, clock=lambda: NOW
    )

    async def copy_first(meeting_id: str, slots: Sequence[datetime], pool: str | None) -> None:
        await allocate_in(other, event)  # reads the same rooms, chooses the same one

    store = RivalClaimsFirst(db, copy_first)
    deps = AllocatorDeps(store=store, sealer=sealer, policy=policy, clock=lambda: NOW)

    await allocate_in(deps, event)

    decided = await store.decision(event.request_id)
    assert decided is not None
    kept = decided.held_meeting_id
    assert kept == best_fit_order(await store.rooms(["47"]), ["47"], event.request_id)[0]
    held = {(d["meeting_id"], d["request_id"]) async for d in store.slots.find({})}
    assert held == {(kept, event.request_id)}
    assert await store.decisions.count_documents({}) == 1


async def allocate_in(deps: AllocatorDeps, event: RequestSubmitted) -> None:
    handler = HANDLERS.bind(deps).handler_for(event)
    assert handler is not None
    await handler(Envelope(str(uuid.uuid4()), event, NOW, "/dopa-vcs/intake", None))


async def with_rooms(
    db: AsyncDatabase[Document], credentials_keys: str, count: int
) -> tuple[MongoReservationStore, CredentialsSealer, list[str]]:
    """An allocator store whose pool 47 holds ``count`` 300-seat rooms, and their Meeting IDs."""
    store = MongoReservationStore(db)
    await store.ensure_indexes()
    sealer = CredentialsSealer(credentials_keys)
    entries = [
        PoolEntry(f"4700000{i:02d}", 300, "47", "s3cretPass", f"https://z.example/j/{i}")
        for i in range(count)
    ]
    await store.replace_rooms([entry.sealed(sealer) for entry in entries])
    return store, sealer, [entry.meeting_id for entry in entries]
