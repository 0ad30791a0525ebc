"""An operator moves a live booking to another room (``POST /v1/admin/requests/{id}/reassign``).

The new room must be free for the rest of the window under the same rule as an
automatic allocation: its slots are claimed under the unique ``(meeting_id,
slot)`` index, so of two reassigns racing for one room exactly one wins, and a
room an allocation took meanwhile is refused. Then the decision switches rooms
with ``room.reassigned`` in one compare-and-set write (of two reassigns of one
booking, the second finds it moved and gives its claim back), and the old room's
slots are freed.

Crash safety follows the claims' own: the old room's slots are first handed back
to the orphan sweeper with a fresh lease (``MongoReservationStore.unconfirm``),
and the new claim is unconfirmed until the sweeper sees the decision holding it,
so a crash at any step leaves at most a lease's worth of a room held, never one
for good, and never a booking without a room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from vcs_allocator import availability_api
from vcs_allocator.availability_api import RoomRules
from vcs_allocator.booking_credentials import booking_credentials
from vcs_allocator.domain import (
    Decision,
    ReassignRefused,
    Rejection,
    Reservation,
    Room,
    check_reassign,
    claim_keys,
    pools_for,
    remaining_span,
)
from vcs_allocator.store import MongoReservationStore
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.auth import Principal
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.events import RoomReassigned
from vcs_shared.outbox import announce
from vcs_shared.scope import Scope

if TYPE_CHECKING:  # zoom_passcodes builds its re-delivery with room_reassigned from here
    from vcs_allocator.zoom_passcodes import ZoomPasscodes

log = structlog.get_logger(__name__)


class NoSuchBooking(Exception):
    """No request of that id within the caller's provinces (404, like a missing one)."""


class PoolNotYours(Exception):
    """The room asked for is of a pool outside the caller's provinces (403 naming it)."""

    def __init__(self, pool: str) -> None:
        super().__init__(pool)
        self.pool = pool


@dataclass(frozen=True, slots=True)
class Reassigned:
    request_id: str
    old_meeting_id: str
    new_meeting_id: str
    capacity: int
    pool: str


@dataclass(frozen=True, slots=True)
class Reassigner:
    """What a reassign needs, from the composition root."""

    store: MongoReservationStore
    sealer: CredentialsSealer
    rules: RoomRules
    clock: Clock = utc_now
    zoom: ZoomPasscodes | None = None
    """Per-booking Zoom passcodes: a moved booking gets a fresh one for its new room too
    (the new room's pool passcode may no longer be the one Zoom has)."""

    async def free_rooms(self, request_id: str, scope: Scope) -> list[Room]:
        """The rooms the booking could move to: free for the rest of its window, fitting,
        of the office's pools and the caller's (the console's reassign list, from the same
        availability query as the clerk's hint). :class:`NoSuchBooking`, or
        :class:`~vcs_allocator.domain.ReassignRefused` when it holds no room."""
        decision = await self.store.decision(request_id)
        if decision is None or not scope.covers_province(decision.province_code):
            raise NoSuchBooking(request_id)
        reservation = decision.reservation
        if reservation is None:
            raise ReassignRefused(
                "the request holds no room (not allocated yet, rejected or cancelled)"
            )
        now = self.clock()
        if reservation.ends_at <= now:
            return []
        found = await availability_api.free_rooms(
            self.store,
            self.rules,
            reservation.province_code,
            reservation.starts_at,
            reservation.ends_at,
            reservation.participants,
            now=now,
        )
        return [room for room in found.free_rooms if scope.covers_pool(room.pool)]

    async def reassign(self, request_id: str, meeting_id: str, principal: Principal) -> Reassigned:
        """Moves the request's booking to ``meeting_id`` for ``principal`` (an operator: its
        provinces are the scope; the move is an audit entry in the same write);
        :class:`NoSuchBooking`, :class:`PoolNotYours` or
        :class:`~vcs_allocator.domain.ReassignRefused` if not."""
        by = principal.subject
        checked = await self._checked(request_id, meeting_id, Scope.of(principal))
        reservation, room, now = checked.reservation, checked.room, checked.now
        sealed = await self._claim_new_room(checked)
        moved = checked.decision.moved_to(room)
        event = room_reassigned(reservation, room, sealed, moved.reassignments, by, now)
        entry = _audit_entry(principal, reservation, room, now)
        announcement = announce(event, correlation_id=request_id, audit=(entry,))
        if not await self.store.move(moved, reservation.meeting_id, announcement):
            now_holds = await self.store.decision(request_id)
            if now_holds is None or now_holds.held_meeting_id != room.meeting_id:
                await self.store.release_claim(room.meeting_id, request_id)
            raise ReassignRefused(
                "the booking changed meanwhile (cancelled, or moved by someone else); "
                "nothing was done"
            )
        await self.store.release_claim(reservation.meeting_id, request_id)
        log.info(
            "reassign.done",
            request_id=request_id,
            old_meeting_id=reservation.meeting_id,
            new_meeting_id=room.meeting_id,
            by=by,
        )
        return Reassigned(
            request_id, reservation.meeting_id, room.meeting_id, room.capacity, room.pool
        )

    async def _checked(self, request_id: str, meeting_id: str, scope: Scope) -> _Checked:
        """The booking and the room it may move to, within ``scope``: :class:`NoSuchBooking`,
        :class:`PoolNotYours` or :class:`~vcs_allocator.domain.ReassignRefused` if not."""
        decision = await self.store.decision(request_id)
        if decision is None or not scope.covers_province(decision.province_code):
            raise NoSuchBooking(request_id)
        pools = pools_for(decision.province_code, use_overflow=self.rules.use_overflow)
        rooms = {room.meeting_id: room for room in await self.store.rooms(pools)}
        now = self.clock()
        reservation, room = check_reassign(
            decision.reservation, rooms.get(meeting_id), meeting_id, now
        )
        if not scope.covers_pool(room.pool):
            raise PoolNotYours(room.pool)
        return _Checked(decision, reservation, room, now)

    async def _claim_new_room(self, checked: _Checked) -> str:
        """Hands the old room's slots to the sweeper, claims the new room's for the rest of the
        window and seals the booking's credentials for it; :class:`ReassignRefused` (the claim
        given back) when the room is taken or Zoom gives no passcode."""
        reservation, room = checked.reservation, checked.room
        request_id = reservation.request_id
        span = remaining_span(
            reservation.starts_at, reservation.ends_at, checked.now, self.rules.policy
        )
        slots = claim_keys(span, self.rules.policy.slot)
        await self.store.unconfirm(reservation.meeting_id, request_id)
        if not await self.store.claim(room.meeting_id, request_id, slots, pool=room.pool):
            raise ReassignRefused(
                f"room {room.meeting_id} is not free for this window: another booking holds it"
            )
        sealed = await booking_credentials(
            self.sealer, self.zoom, request_id, reservation.starts_at, room
        )
        if isinstance(sealed, Rejection):
            await self.store.release_claim(room.meeting_id, request_id)
            raise ReassignRefused(sealed.message_en)
        return sealed


@dataclass(frozen=True, slots=True)
class _Checked:
    """A reassign that passed its checks: the booking's decision, its live reservation, the
    room it moves to, and the moment it was checked at."""

    decision: Decision
    reservation: Reservation
    room: Room
    now: datetime


def _audit_entry(
    principal: Principal, reservation: Reservation, room: Room, at: datetime
) -> AuditRecorded:
    """The operator's move of a booking, as its audit entry."""
    return AuditRecorded(
        actor=Actor.of(principal),
        action=AuditAction.room_reassign,
        target=Target(kind="request", id=reservation.request_id),
        provinces=(reservation.province_code,),
        before=f"room {reservation.meeting_id}",
        after=f"room {room.meeting_id}",
        at=at,
    )


def room_reassigned(
    reservation: Reservation,
    room: Room,
    sealed_credentials: str,
    reassignment: int,
    by: str,
    at: datetime,
) -> RoomReassigned:
    """The event telling the office its booking's room and credentials now (an operator's
    move, or the Zoom fallback re-sending the passcode the room really has)."""
    return RoomReassigned(
        request_id=reservation.request_id,
        province_code=reservation.province_code,
        district_code=reservation.district_code,
        old_meeting_id=reservation.meeting_id,
        new_meeting_id=room.meeting_id,
        capacity=room.capacity,
        join_url=room.public_join_url,
        pool=room.pool_kind(reservation.province_code),
        starts_at=reservation.starts_at,
        ends_at=reservation.ends_at,
        sealed_credentials=sealed_credentials,
        reassignment=reassignment,
        reassigned_by=by,
        reassigned_at=at,
    )
