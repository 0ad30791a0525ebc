"""Several allocator processes, crashes and orphans: never a Meeting ID twice.

Requests are published straight to the namespace's exchange, as the intake's
outbox relay would; the outcome is read from the events the allocators publish
and from their slot and decision collections.

One allocator at a time handles a province (its shard queue has a single active consumer), so
allocators race for a province's rooms only when a request reaches two of them: a
redelivery, a failover, or an upgrade whose unsplit queue of an earlier release is still
bound (a least-privilege deployment cannot unbind it itself). The first test makes that last
case, the hardest: every request arrives twice, once in its shard and once in the unsplit
queue, which the three allocators drain side by side.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.support.events import sealed
from tests.support.paths import SAMPLE_POOL
from tests.support.requests import tomorrow_at
from tests.support.services import StartServices
from tests.support.stand_in import declare_unsplit_queue
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_allocator.domain import AllocationPolicy, claim_keys, occupied_span, tie_order
from vcs_allocator.pool import load_pool_file
from vcs_allocator.store import slot_id, slot_key
from vcs_shared.broker import AmqpPublisher, Topology, connect
from vcs_shared.envelope import encode
from vcs_shared.events import RequestSubmitted, Urgency
from vcs_shared.store import Document, database_name, epoch_ms
from vcs_shared.topology import binding_keys
from vcs_tools.devstack import ServiceProcess

pytestmark = pytest.mark.integration


SAKON_NAKHON_OFFICES = [f"47{n:02d}" for n in range(1, 19)]
PER_OFFICE = 7  # 18 offices x 7 = 126 requests
PARTICIPANTS = 450
CRASHED = "an allocator that died"
START = tomorrow_at(9, days=2)
END = START + timedelta(hours=2)
SLOTS_PER_BOOKING = len(
    claim_keys(occupied_span(START, END, AllocationPolicy()), timedelta(minutes=5))
)


def fitting_rooms(participants: int) -> set[str]:
    """The sample pool's active rooms Sakon Nakhon may use (own pool and region-12 overflow)."""
    return {
        r.meeting_id
        for r in load_pool_file(SAMPLE_POOL)
        if r.active and r.pool in ("47", "region-12") and r.capacity >= participants
    }


def submitted(
    district_code: str,
    *,
    request_id: str | None = None,
    participants: int = PARTICIPANTS,
    starts_at: datetime = START,
    ends_at: datetime = END,
) -> RequestSubmitted:
    return RequestSubmitted(
        request_id=request_id or str(uuid.uuid4()),
        province_code=district_code[:2],
        district_code=district_code,
        title="ประชุมติดตามสถานการณ์โควิด-19",
        starts_at=starts_at,
        ends_at=ends_at,
        participants=participants,
        urgency=Urgency.most_urgent,
        needs_support=False,
        sealed_contact=sealed(),
        submitted_at=datetime.now(UTC),
    )


async def publish(amqp_url: str, topology: Topology, events: Iterable[RequestSubmitted]) -> None:
    """Publishes with confirms and ``mandatory``, all in flight at once, as the relay would."""
    connection = await connect(amqp_url, name="test-publisher")
    try:
        publisher = await AmqpPublisher.open(connection, topology.exchange)
        await asyncio.gather(
            *(publisher.publish(encode(event, source="intake")) for event in events)
        )
    finally:
        await connection.close()


def outcomes(tap: EventTap) -> dict[str, set[tuple[str, str]]]:
    """Per request id, the distinct outcomes published: ("assigned", meeting id) or
    ("rejected", reason). A redelivered event (same id) counts once."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for message in tap.messages:
        event = message.cloudevent
        if message.routing_key.startswith("room.assigned."):
            found[event["subject"]].add(("assigned", event["data"]["meeting_id"]))
        elif message.routing_key.startswith("request.rejected."):
            found[event["subject"]].add(("rejected", event["data"]["reason"]))
    return found


async def all_decided(tap: EventTap, request_ids: set[str], timeout: float) -> None:
    async def decided() -> bool:
        return request_ids <= outcomes(tap).keys()

    await eventually(decided, timeout=timeout, what=f"{len(request_ids)} decisions")


def allocator_db(mongo: AsyncMongoClient[Document], namespace: str) -> AsyncDatabase[Document]:
    return mongo[database_name(namespace, "allocator")]


async def check_never_double_booked(
    tap: EventTap, db: AsyncDatabase[Document], request_ids: set[str]
) -> None:
    """Every request decided once; rooms that fit all used, none twice; the slots agree."""
    found = outcomes(tap)
    assert {rid: len(found[rid]) for rid in request_ids} == dict.fromkeys(request_ids, 1)
    assigned = {
        rid: value for rid in request_ids for kind, value in found[rid] if kind == "assigned"
    }
    rejected = Counter(
        value for rid in request_ids for kind, value in found[rid] if kind == "rejected"
    )

    assert set(rejected) <= {"no_room_free"}
    assert len(assigned) + rejected["no_room_free"] == len(request_ids)
    assert Counter(assigned.values()).most_common(1)[0][1] == 1  # no Meeting ID twice
    assert set(assigned.values()) == fitting_rooms(PARTICIPANTS)

    holders: dict[str, set[str]] = defaultdict(set)
    per_request: Counter[str] = Counter()
    async for slot in db.slots.find({}, {"meeting_id": 1, "request_id": 1}):
        holders[slot["meeting_id"]].add(slot["request_id"])
        per_request[slot["request_id"]] += 1
    assert {m: requests for m, requests in holders.items()} == {
        meeting_id: {rid} for rid, meeting_id in assigned.items()
    }
    assert set(per_request.values()) == {SLOTS_PER_BOOKING}

    decisions = {d["_id"]: d async for d in db.decisions.find({"_id": {"$in": list(request_ids)}})}
    assert decisions.keys() == request_ids
    assert {
        rid: d.get("meeting_id") for rid, d in decisions.items() if d["outcome"] == "assigned"
    } == assigned


async def test_three_allocators_share_one_window_without_booking_a_room_twice(
    start_services: StartServices,
    tap: EventTap,
    amqp_url: str,
    broker: Any,
    topology: Topology,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    unsplit = await declare_unsplit_queue(broker, topology)
    try:
        await start_services("allocator", "allocator", "allocator")  # each drains it
        for key in binding_keys("allocator"):  # bound again, as the definitions import leaves it
            await unsplit.bind(topology.exchange, routing_key=key)
        events = [submitted(office) for office in SAKON_NAKHON_OFFICES for _ in range(PER_OFFICE)]
        request_ids = {e.request_id for e in events}
        assert len(request_ids) >= 120

        await publish(amqp_url, topology, events)
        await all_decided(tap, request_ids, timeout=120)

        await check_never_double_booked(tap, allocator_db(mongo, namespace), request_ids)
    finally:
        await broker.queue_delete(unsplit.name)


async def test_an_allocator_killed_mid_run_leaves_nothing_double_booked_or_pending(
    start_services: StartServices,
    tap: EventTap,
    amqp_url: str,
    topology: Topology,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    allocators = await start_services("allocator", "allocator", "allocator")
    events = [submitted(office) for office in SAKON_NAKHON_OFFICES for _ in range(PER_OFFICE)]
    request_ids = {e.request_id for e in events}

    publishing = asyncio.create_task(publish(amqp_url, topology, events))

    async def the_working_one() -> ServiceProcess | None:  # Sakon Nakhon's shard's consumer
        working = [a for a in allocators if '"event": "allocation.' in a.log_path.read_text()]
        return working[0] if working else None

    victim = await eventually(the_working_one, timeout=60, what="an allocator allocating")
    victim.kill()
    decided_at_kill = len(outcomes(tap).keys() & request_ids)
    await publishing

    await all_decided(tap, request_ids, timeout=120)
    assert decided_at_kill < len(request_ids)  # the kill did happen mid-run
    await check_never_double_booked(tap, allocator_db(mongo, namespace), request_ids)


async def test_a_crash_between_claim_and_decision_is_freed_by_the_orphan_sweeper(
    start_services: StartServices,
    tap: EventTap,
    amqp_url: str,
    topology: Topology,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    """Slots inserted for a request that was never decided (its allocator died, its message
    went elsewhere) block the room only until the lease runs out."""
    await start_services(
        "allocator",
        extra_env={"VCS_ORPHAN_LEASE_SECONDS": "2", "VCS_ORPHAN_SWEEP_SECONDS": "0.2"},
    )
    db = allocator_db(mongo, namespace)
    event = submitted("4701", participants=250)
    best = min(
        (r for r in load_pool_file(SAMPLE_POOL) if r.pool == "47" and r.capacity >= 250),
        key=lambda r: (r.capacity, tie_order(event.request_id, r.meeting_id)),
    )
    crashed = str(uuid.uuid4())
    await insert_claim(db, best.meeting_id, crashed, datetime.now(UTC) - timedelta(minutes=5))

    async def freed() -> bool:
        return await db.slots.count_documents({"request_id": crashed}) == 0

    await eventually(freed, timeout=30, what="the orphan sweeper freeing the slots")

    await publish(amqp_url, topology, [event])
    await all_decided(tap, {event.request_id}, timeout=30)
    assert outcomes(tap)[event.request_id] == {("assigned", best.meeting_id)}

    async def confirmed() -> bool:
        return (
            await db.slots.count_documents({"request_id": event.request_id, "confirmed": True})
            == SLOTS_PER_BOOKING
        )

    await eventually(confirmed, timeout=30, what="the sweeper confirming the decided claim")


async def test_a_redelivered_request_adopts_the_slots_its_crashed_attempt_claimed(
    start_services: StartServices,
    tap: EventTap,
    amqp_url: str,
    topology: Topology,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    """The crashed attempt had claimed a 1,000 room and got half its slots in; the
    redelivery keeps that room (not the best fit) and completes the claim."""
    await start_services("allocator")
    db = allocator_db(mongo, namespace)
    big = min(
        r.meeting_id for r in load_pool_file(SAMPLE_POOL) if r.pool == "47" and r.capacity == 1000
    )
    event = submitted("4702", participants=250)
    inserted = await insert_claim(db, big, event.request_id, datetime.now(UTC), half=True)

    await publish(amqp_url, topology, [event])
    await all_decided(tap, {event.request_id}, timeout=30)

    assert outcomes(tap)[event.request_id] == {("assigned", big)}
    slots = [s async for s in db.slots.find({"request_id": event.request_id})]
    assert len(slots) == SLOTS_PER_BOOKING
    assert {s["meeting_id"] for s in slots} == {big}
    # Adopted, not deleted and inserted again (which would keep the derived _id but not the
    # crashed attempt's own mark).
    assert inserted <= {s["_id"] for s in slots if s.get("left_by") == CRASHED}


async def insert_claim(
    db: AsyncDatabase[Document],
    meeting_id: str,
    request_id: str,
    claimed_at: datetime,
    *,
    half: bool = False,
) -> set[str]:
    """What an allocator that died after inserting slots (and before deciding) leaves behind,
    each slot marked ``left_by`` (a field the allocator never writes)."""
    slots = claim_keys(occupied_span(START, END, AllocationPolicy()), timedelta(minutes=5))
    if half:
        slots = slots[: len(slots) // 2]
    ids = [slot_id(meeting_id, slot_key(slot)) for slot in slots]
    docs: list[Document] = [
        {
            "_id": sid,
            "meeting_id": meeting_id,
            "slot": slot_key(slot),
            "request_id": request_id,
            "attempt": "crashed",
            "claimed_ms": epoch_ms(claimed_at),
            "confirmed": False,
            "left_by": CRASHED,
        }
        for sid, slot in zip(ids, slots, strict=True)
    ]
    await db.slots.insert_many(docs)
    return set(ids)
