"""A fresh Zoom passcode per booking, end to end inside the allocator: its handler on the real
store decides and plans, its passcode loop PATCHes the fake Zoom API (a real local HTTP server).

The allocator's clock is given (bookings in 2020 by a 2020 clock), and the passcode loop is run
at chosen moments (when a booking's change is due, when its window starts): no sleeps, no wall
clock. What the office is sent is read from the ``room.assigned``/``room.reassigned`` stored
with the decision (the outbox the relay publishes and the notifier opens).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from tests.support.events import request_submitted
from tests.support.zoom_fake import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, FakeZoom
from vcs_allocator.availability_api import RoomRules
from vcs_allocator.domain import AllocationPolicy, DecisionOutcome, PoolEntry
from vcs_allocator.handlers import HANDLERS, AllocatorDeps
from vcs_allocator.reassign import Reassigner
from vcs_allocator.store import MongoReservationStore
from vcs_allocator.zoom import ZoomAccount, ZoomClient
from vcs_allocator.zoom_budget import HostBudget
from vcs_allocator.zoom_passcodes import MongoPasscodeJobs, ZoomPasscodes
from vcs_shared.auth import Principal, Role
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.envelope import Envelope
from vcs_shared.events import RequestCancelled, RequestRejected, RoomAssigned, RoomReassigned
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration

NOW = datetime(2020, 4, 13, 2, 0, tzinfo=UTC)
DAY = NOW + timedelta(days=1)
BUFFER = timedelta(minutes=15)
ROOM_A = PoolEntry("111111111", 300, "47", "PoolA111", "https://z.example/j/111111111?pwd=x",
                   host="host-a@example.go.th")  # fmt: skip
ROOM_B = PoolEntry("222222222", 300, "47", "PoolB222", "https://z.example/j/222222222?pwd=y",
                   host="host-b@example.go.th")  # fmt: skip
HOST_OF = {ROOM_A.meeting_id: ROOM_A.host, ROOM_B.meeting_id: ROOM_B.host}


def outcomes(outcome: str) -> float:
    return REGISTRY.get_sample_value("vcs_zoom_passcodes_total", {"outcome": outcome}) or 0.0


@dataclass
class Allocator:
    """One allocator process's handler and passcode loop, on the test's store."""

    store: MongoReservationStore
    sealer: CredentialsSealer
    passcodes: ZoomPasscodes
    deps: AllocatorDeps

    async def book(self, starts_at: datetime) -> str:
        event = request_submitted(str(uuid.uuid4()), starts_at)
        handler = HANDLERS.bind(self.deps).handler_for(event)
        assert handler is not None
        await handler(Envelope(str(uuid.uuid4()), event, NOW, "/dopa-vcs/intake", "corr"))
        return event.request_id

    async def sent(self, request_id: str, event_type: str) -> list[dict[str, Any]]:
        """The data of each stored event of that type, in order."""
        stored = await self.store.decisions.find_one({"_id": request_id})
        assert stored is not None
        bodies = [json.loads(entry["body"]) for entry in stored.get("outbox", [])]
        return [body["data"] for body in bodies if body["type"] == event_type]

    async def passcode_sent(self, request_id: str) -> tuple[str, str]:
        """(meeting id, passcode) the office was sent last: assignment or re-delivery."""
        [assigned] = await self.sent(request_id, RoomAssigned.cloudevent_type())
        again = await self.sent(request_id, RoomReassigned.cloudevent_type())
        latest = again[-1] if again else assigned
        meeting = latest.get("new_meeting_id", latest.get("meeting_id"))
        return str(meeting), self.sealer.open(latest["sealed_credentials"]).passcode


@pytest.fixture
async def make_allocator(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str, zoom: FakeZoom
) -> AsyncIterator[Any]:
    clients: list[ZoomClient] = []
    db = mongo[database_name(namespace, "allocator")]
    sealer = CredentialsSealer(credentials_keys)

    async def make(
        *, limit: int = 100, fallback: Literal["pool_passcode", "reject"] = "pool_passcode"
    ) -> Allocator:
        store = MongoReservationStore(db)
        await store.ensure_indexes()
        if await store.room_count() == 0:
            await store.replace_rooms([ROOM_A.sealed(sealer), ROOM_B.sealed(sealer)])
        client = ZoomClient(
            ZoomAccount(ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, zoom.api_url, zoom.oauth_url)
        )
        clients.append(client)
        jobs = MongoPasscodeJobs(db)
        await jobs.ensure_indexes()
        passcodes = ZoomPasscodes(
            jobs=jobs,
            budget=HostBudget(db, limit=limit),
            zoom=client,
            sealer=sealer,
            fallback=fallback,
            lead=BUFFER,
        )
        policy = AllocationPolicy(buffer=BUFFER)
        deps = AllocatorDeps(
            store=store, sealer=sealer, policy=policy, clock=lambda: NOW, zoom=passcodes
        )
        return Allocator(store, sealer, passcodes, deps)

    yield make
    for client in clients:
        await client.aclose()


async def test_each_booking_gets_its_own_passcode_set_once_just_before_its_window(
    make_allocator: Any, zoom: FakeZoom
) -> None:
    allocator, rival = await make_allocator(), await make_allocator()
    morning = await allocator.book(DAY)
    afternoon = await allocator.book(DAY + timedelta(hours=3))
    [(room_1, first), (room_2, second)] = [
        await allocator.passcode_sent(r) for r in (morning, afternoon)
    ]
    assert first != second
    assert {first, second}.isdisjoint({ROOM_A.passcode, ROOM_B.passcode})
    assert zoom.patches == []  # nothing changes under an earlier booking at allocation

    # Two allocator processes run the loop when the morning's change is due: one PATCH.
    handled = await asyncio.gather(
        allocator.passcodes.apply_due(allocator.store, DAY - BUFFER),
        rival.passcodes.apply_due(rival.store, DAY - BUFFER),
    )
    assert sum(handled) == 1
    assert [(p.meeting_id, p.password) for p in zoom.patches] == [(room_1, first)]

    await allocator.passcodes.apply_due(allocator.store, DAY + timedelta(hours=3) - BUFFER)
    await allocator.passcodes.apply_due(allocator.store, DAY + timedelta(days=1))
    assert [(p.meeting_id, p.password) for p in zoom.patches] == [
        (room_1, first),
        (room_2, second),
    ]


async def test_the_daily_limit_is_spread_over_hosts_then_the_pool_passcode_is_kept(
    make_allocator: Any, zoom: FakeZoom
) -> None:
    allocator = await make_allocator(limit=2)
    fell_back = outcomes("fallback_pool_passcode")
    bookings = [await allocator.book(DAY + timedelta(hours=2 * n)) for n in range(5)]
    sent = [await allocator.passcode_sent(r) for r in bookings]

    await allocator.passcodes.apply_due(allocator.store, DAY + timedelta(days=1))

    per_host: dict[str | None, int] = {}
    for patch in zoom.patches:
        per_host[HOST_OF[patch.meeting_id]] = per_host.get(HOST_OF[patch.meeting_id], 0) + 1
    assert per_host == {ROOM_A.host: 2, ROOM_B.host: 2}
    assert sorted((p.meeting_id, p.password) for p in zoom.patches) == sorted(sent[:4])
    # The fifth: no host had an update left that day, so the room's pool passcode.
    pool_passcodes = {ROOM_A.meeting_id: ROOM_A.passcode, ROOM_B.meeting_id: ROOM_B.passcode}
    meeting, passcode = sent[4]
    assert passcode == pool_passcodes[meeting]
    assert outcomes("fallback_pool_passcode") == fell_back + 1


async def test_a_rate_limited_update_is_backed_off_and_still_set(
    make_allocator: Any, zoom: FakeZoom
) -> None:
    allocator = await make_allocator()
    booking = await allocator.book(DAY)
    zoom.rate_limit_next = 1

    await allocator.passcodes.apply_due(allocator.store, DAY - BUFFER)

    assert zoom.rate_limited == 1
    assert [(p.meeting_id, p.password) for p in zoom.patches] == [
        await allocator.passcode_sent(booking)
    ]


async def test_zoom_down_until_the_window_sends_the_passcode_the_room_really_has(
    make_allocator: Any, zoom: FakeZoom
) -> None:
    allocator = await make_allocator()
    await allocator.book(DAY)
    await allocator.passcodes.apply_due(allocator.store, DAY - BUFFER)
    [(meeting, earlier_passcode)] = [(p.meeting_id, p.password) for p in zoom.patches]
    later_day = DAY + timedelta(days=1)
    later = await allocator.book(later_day)
    later_meeting, _ = await allocator.passcode_sent(later)
    # What Zoom has for the later booking's room: the earlier booking's passcode, or the pool's.
    pool_passcodes = {ROOM_A.meeting_id: ROOM_A.passcode, ROOM_B.meeting_id: ROOM_B.passcode}
    really = earlier_passcode if later_meeting == meeting else pool_passcodes[later_meeting]
    fell_back = outcomes("fallback_standing")
    zoom.stop()

    await allocator.passcodes.apply_due(allocator.store, later_day - BUFFER)  # retried later
    assert await allocator.sent(later, RoomReassigned.cloudevent_type()) == []
    await allocator.passcodes.apply_due(allocator.store, later_day)  # the window starts

    [again] = await allocator.sent(later, RoomReassigned.cloudevent_type())
    assert (again["old_meeting_id"], again["new_meeting_id"]) == (later_meeting, later_meeting)
    assert again["reassigned_by"] == "zoom-fallback"
    assert await allocator.passcode_sent(later) == (later_meeting, really)
    assert outcomes("fallback_standing") == fell_back + 1
    assert len(zoom.patches) == 1


async def test_zoom_down_with_reject_configured_rejects_and_frees_the_room(
    make_allocator: Any, zoom: FakeZoom
) -> None:
    allocator = await make_allocator(fallback="reject")
    rejected = outcomes("fallback_reject")
    zoom.stop()

    booking = await allocator.book(DAY)

    decision = await allocator.store.decision(booking)
    assert decision is not None
    assert decision.outcome is DecisionOutcome.rejected
    [refusal] = await allocator.sent(booking, RequestRejected.cloudevent_type())
    assert refusal["reason"] == "no_room_free"
    assert "Zoom passcode" in refusal["message_en"]
    assert outcomes("fallback_reject") == rejected + 1
    zoom.start()
    booked = [await allocator.book(DAY), await allocator.book(DAY)]  # both rooms free again
    rooms = {(await allocator.passcode_sent(r))[0] for r in booked}
    assert rooms == {ROOM_A.meeting_id, ROOM_B.meeting_id}


async def test_a_moved_booking_gets_a_fresh_passcode_for_its_new_room(
    make_allocator: Any, zoom: FakeZoom
) -> None:
    allocator = await make_allocator()
    booking = await allocator.book(DAY)
    old_meeting, old_passcode = await allocator.passcode_sent(booking)
    new_meeting = ({ROOM_A.meeting_id, ROOM_B.meeting_id} - {old_meeting}).pop()
    reassigner = Reassigner(
        allocator.store,
        allocator.sealer,
        RoomRules(allocator.deps.policy, use_overflow=True),
        clock=lambda: NOW,
        zoom=allocator.passcodes,
    )
    operator = Principal(
        subject="operator:somsri",
        role=Role.operator,
        jti="jti-1",
        expires_at=NOW + timedelta(hours=8),
        provinces=frozenset({"47"}),
    )

    await reassigner.reassign(booking, new_meeting, operator)
    await allocator.passcodes.apply_due(allocator.store, DAY)

    meeting, passcode = await allocator.passcode_sent(booking)
    assert meeting == new_meeting
    assert passcode not in {old_passcode, ROOM_A.passcode, ROOM_B.passcode}
    # The old room's change is dropped; the new room gets the passcode the office was sent.
    assert [(p.meeting_id, p.password) for p in zoom.patches] == [(new_meeting, passcode)]


async def test_a_cancelled_bookings_passcode_is_never_set(
    make_allocator: Any, zoom: FakeZoom
) -> None:
    allocator = await make_allocator()
    booking = await allocator.book(DAY)
    withdrawn = outcomes("withdrawn")
    cancelled = RequestCancelled(
        request_id=booking,
        province_code="47",
        district_code="4701",
        cancelled_by="office:4701",
        cancelled_at=NOW,
    )
    handler = HANDLERS.bind(allocator.deps).handler_for(cancelled)
    assert handler is not None
    await handler(Envelope(str(uuid.uuid4()), cancelled, NOW, "/dopa-vcs/intake", "corr"))

    assert await allocator.passcodes.apply_due(allocator.store, DAY) == 1
    assert zoom.patches == []
    assert outcomes("withdrawn") == withdrawn + 1
