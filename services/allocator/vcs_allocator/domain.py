"""The allocation rules, with no knowledge of brokers or databases.

A reservation occupies its window plus the turnover buffer after it, rounded
outwards to the slot grid. Two reservations of one Meeting ID conflict exactly
when their occupied spans overlap, which for windows on the grid is the rule
"the requested window, widened by the buffer on both sides, must not overlap
another reservation". The store enforces the same spans with one unique
document per Meeting ID per slot, so the database, not this module, is what
finally forbids a double booking.

Rounding outwards only ever errs on the safe side: windows on the grid (with a
buffer that is a multiple of the slot) are judged exactly, windows off the
grid may be kept up to one slot further apart than the buffer.

A request is decided once: its :class:`Decision` says assigned, rejected or
cancelled (before it was decided), and only an assignment not yet released
holds a room (:attr:`Decision.reservation`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypedDict
from urllib.parse import urlsplit, urlunsplit

from vcs_shared.credentials import CredentialsSealer, MeetingCredentials
from vcs_shared.events import RejectionReason, RequestCancelled, RequestSubmitted
from vcs_shared.offices import find_office, region_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Room:
    """One Zoom Meeting ID of a pool, as stored; ``pool`` is a province code or a regional
    overflow pool. Its passcode and full join URL are only in ``sealed_credentials``
    (:mod:`vcs_shared.credentials`), opened when a booking is made, never at rest in clear."""

    meeting_id: str
    capacity: int
    pool: str
    public_join_url: str
    """The join URL without its query and fragment, so without any embedded passcode."""
    sealed_credentials: str
    active: bool = True
    moved_from: str | None = None
    """In a pool file only: the pool this row moves the Meeting ID from (else refused)."""
    host: str | None = None
    """The Zoom user owning the meeting (e-mail or user id), whose daily allowance of meeting
    updates a fresh passcode spends; unset: the pool's rooms share one host."""

    def pool_kind(self, province_code: str) -> str:
        """``province`` when the room is from the office's own province's pool, else
        ``overflow`` (a regional pool lent to it): what ``room.assigned`` tells the office."""
        return "province" if self.pool == province_code else "overflow"

    @property
    def zoom_host(self) -> str:
        """The host whose allowance a passcode change of this room counts against."""
        return self.host or f"pool-{self.pool}"


@dataclass(frozen=True, slots=True)
class PoolEntry:
    """One row of an operators' pool file: a room with its passcode in clear, sealed
    (:meth:`sealed`) before it is stored."""

    meeting_id: str
    capacity: int
    pool: str
    passcode: str
    join_url: str
    active: bool = True
    moved_from: str | None = None
    host: str | None = None

    @property
    def public_join_url(self) -> str:
        return public_join_url(self.join_url)

    def sealed(self, sealer: CredentialsSealer) -> Room:
        credentials = MeetingCredentials(passcode=self.passcode, join_url=self.join_url)
        return Room(
            self.meeting_id,
            self.capacity,
            self.pool,
            self.public_join_url,
            sealer.seal(credentials),
            self.active,
            self.moved_from,
            self.host,
        )


def public_join_url(join_url: str) -> str:
    """A join URL without its query string and fragment (``?pwd=``, ``#pwd=``): what may be
    shown to anyone."""
    parts = urlsplit(join_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class AllocationPolicy:
    """The tunable parts of the rules (settings)."""

    buffer: timedelta = timedelta(minutes=15)
    slot: timedelta = timedelta(minutes=5)
    max_duration: timedelta = timedelta(hours=12)
    past_grace: timedelta = timedelta(minutes=5)
    horizon: timedelta = timedelta(days=3660)
    """A guard, not a booking rule (the intake's ``VCS_BOOKING_HORIZON_DAYS`` is): a window
    this far ahead is rejected before any slot arithmetic (year 9999 would overflow)."""


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open UTC interval [start, end) on the slot grid."""

    start: datetime
    end: datetime

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectionReason
    message_th: str
    message_en: str


class DecisionOutcome(StrEnum):
    assigned = "assigned"
    rejected = "rejected"
    cancelled = "cancelled"
    """Withdrawn before it was decided: no room will be assigned."""


@dataclass(frozen=True, slots=True)
class Booking:
    """What a request asked for."""

    starts_at: datetime
    ends_at: datetime
    participants: int


@dataclass(frozen=True, slots=True)
class AssignedRoom:
    """The room a decision assigned (no credentials: those stay with the room)."""

    meeting_id: str
    capacity: int
    pool: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """A Meeting ID held for a request's window: the live part of an assignment."""

    request_id: str
    province_code: str
    district_code: str
    meeting_id: str
    capacity: int
    pool: str
    starts_at: datetime
    ends_at: datetime
    participants: int


@dataclass(frozen=True, slots=True)
class Decision:
    """How one request was decided, once: assigned (``room``), rejected (``reason``), or
    cancelled before either; ``released`` once its room was given back."""

    request_id: str
    province_code: str
    district_code: str
    outcome: DecisionOutcome
    decided_at: datetime
    released: bool = False
    booking: Booking | None = None
    room: AssignedRoom | None = None
    reason: RejectionReason | None = None
    reassignments: int = 0
    """How many times an operator moved the booking to another room."""

    @classmethod
    def assigned(cls, request: RequestSubmitted, room: Room, *, at: datetime) -> Decision:
        assigned = AssignedRoom(room.meeting_id, room.capacity, room.pool)
        return cls(**_decided(request, at), outcome=DecisionOutcome.assigned, room=assigned)

    @classmethod
    def rejected(
        cls, request: RequestSubmitted, reason: RejectionReason, *, at: datetime
    ) -> Decision:
        return cls(**_decided(request, at), outcome=DecisionOutcome.rejected, reason=reason)

    @classmethod
    def cancelled(cls, cancel: RequestCancelled, *, at: datetime) -> Decision:
        """A request withdrawn before it was decided: it will never get a room."""
        return cls(
            **cancel.subject(), outcome=DecisionOutcome.cancelled, decided_at=at, released=True
        )

    @property
    def reservation(self) -> Reservation | None:
        """The room this decision holds: an assignment not released (else None)."""
        if self.outcome is not DecisionOutcome.assigned or self.released:
            return None
        if self.room is None or self.booking is None:
            return None
        return Reservation(
            request_id=self.request_id,
            province_code=self.province_code,
            district_code=self.district_code,
            meeting_id=self.room.meeting_id,
            capacity=self.room.capacity,
            pool=self.room.pool,
            starts_at=self.booking.starts_at,
            ends_at=self.booking.ends_at,
            participants=self.booking.participants,
        )

    def moved_to(self, room: Room) -> Decision:
        """The same assignment in another room (an operator's reassign)."""
        assigned = AssignedRoom(room.meeting_id, room.capacity, room.pool)
        return replace(self, room=assigned, reassignments=self.reassignments + 1)

    @property
    def held_meeting_id(self) -> str | None:
        """The Meeting ID of :attr:`reservation`, if any."""
        reservation = self.reservation
        return None if reservation is None else reservation.meeting_id


class _DecidedFields(TypedDict):
    request_id: str
    province_code: str
    district_code: str
    decided_at: datetime
    booking: Booking


def _decided(request: RequestSubmitted, at: datetime) -> _DecidedFields:
    booking = Booking(request.starts_at, request.ends_at, request.participants)
    return {**request.subject(), "decided_at": at, "booking": booking}


KEY_STRIDE = 4
"""Every reservation holds at least this many slots, and a claim inserts the documents of only
some of its slots (:func:`claim_keys`): its first and last ``KEY_STRIDE - 1`` and every slot on
a grid of ``KEY_STRIDE`` slots between. A constant, not a setting: keys written under one value
must still meet keys written under another, whatever the buffer is set to later."""


def occupied_span(starts_at: datetime, ends_at: datetime, policy: AllocationPolicy) -> Span:
    """The slots a reservation holds: its window and the buffer after it, rounded outwards, and
    never fewer than :data:`KEY_STRIDE` slots (with the default 15-minute buffer on the 5-minute
    grid every window already holds that many)."""
    start = _floor(starts_at.astimezone(UTC), policy.slot)
    end = _ceil((ends_at + policy.buffer).astimezone(UTC), policy.slot)
    return Span(start, max(end, start + KEY_STRIDE * policy.slot))


def slot_starts(span: Span, slot: timedelta) -> list[datetime]:
    """Every slot start in ``span``."""
    count = (span.end - span.start) // slot
    return [span.start + i * slot for i in range(count)]


def claim_keys(span: Span, slot: timedelta) -> list[datetime]:
    """The slots whose documents a claim of ``span`` inserts under the store's unique index.

    Two spans of at least :data:`KEY_STRIDE` slots that overlap always share one of these
    keys, so the index refuses every overlap as before: an overlap of ``KEY_STRIDE`` slots or
    more contains a slot of the stride grid, which both insert; a shorter one cannot hold
    either span whole, so it is the end of one and the beginning of the other, which both
    insert entirely (their last and first ``KEY_STRIDE - 1`` slots). A document per slot,
    as claims wrote before, is a superset and meets these keys just the same.

    This is about the store's cost, which is per document (0.3-0.4 ms each on the embedded
    store): a two-hour meeting inserts 11 documents instead of 27.
    """
    cells = slot_starts(span, slot)
    edge = KEY_STRIDE - 1
    last = len(cells) - edge
    return [
        cell
        for index, cell in enumerate(cells)
        if index < edge or index >= last or _on_stride(cell, slot)
    ]


def probe_slots(span: Span, slot: timedelta) -> list[datetime]:
    """Enough of a span's slots to see every reservation that overlaps it: the slots of the
    stride grid in it, its first and its last.

    An overlap of :data:`KEY_STRIDE` slots or more holds a stride slot, which every
    reservation inserts; a shorter one begins at the span's first slot or ends at its last,
    and lies within the first or last slots of the other reservation, which it inserts all
    of (:func:`claim_keys`). Looking only there ships a fraction of the slot documents.
    """
    cells = slot_starts(span, slot)
    if not cells:
        return []
    picked = [cell for cell in cells if _on_stride(cell, slot)]
    return sorted({cells[0], *picked, cells[-1]})


def kept_keys(
    first: datetime, starting: datetime, slot: timedelta
) -> tuple[datetime, list[datetime]]:
    """What a reservation holding slots from ``first`` keeps when it gives back the slots from
    ``starting`` on (a cancelled meeting under way): it keeps its slots up to ``starting`` and
    at least :data:`KEY_STRIDE` of them, so the part it keeps is a reservation like any other;
    returns the first slot it gives back and the keys its kept part must have at its end,
    which the claim may not have inserted (they were in the middle of the whole span)."""
    end = max(starting, first + KEY_STRIDE * slot)
    kept = slot_starts(Span(first, end), slot)
    return end, kept[-(KEY_STRIDE - 1) :]


def _on_stride(cell: datetime, slot: timedelta) -> bool:
    return ((cell - _EPOCH) // slot) % KEY_STRIDE == 0


def released_from(cancelled_at: datetime, policy: AllocationPolicy) -> datetime:
    """The first slot a cancellation gives back: the next grid slot after the moment it was
    cancelled. A meeting not yet begun gives back its whole window; one under way only the
    rest of it (what is over, and the slot running now, stay as they were)."""
    return _ceil(cancelled_at.astimezone(UTC), policy.slot)


def check_window(
    starts_at: datetime, ends_at: datetime, now: datetime, policy: AllocationPolicy
) -> Rejection | None:
    """Rejects windows that end before they start, lie in the past or too far ahead, or last
    too long."""
    if ends_at <= starts_at:
        return reject(
            RejectionReason.window_invalid,
            "เวลาสิ้นสุดต้องอยู่หลังเวลาเริ่ม",
            "the meeting must end after it starts",
        )
    if starts_at < now - policy.past_grace:
        return reject(
            RejectionReason.window_invalid, "เวลาเริ่มประชุมผ่านไปแล้ว", "the meeting starts in the past"
        )
    if ends_at > now + policy.horizon:
        return reject(
            RejectionReason.window_invalid,
            "วันประชุมไกลเกินกว่าที่จองได้",
            "the meeting is further ahead than can be booked",
        )
    if ends_at - starts_at > policy.max_duration:
        hours = int(policy.max_duration.total_seconds() // 3600)
        return reject(
            RejectionReason.window_invalid,
            f"การประชุมยาวเกิน {hours} ชั่วโมง",
            f"the meeting is longer than {hours} hours",
        )
    return None


def tie_order(request_id: str | None, meeting_id: str) -> str:
    """Order among equally fitting rooms: a rendezvous hash of request and Meeting ID, or the
    Meeting ID itself when no request is given."""
    if request_id is None:
        return meeting_id
    return hashlib.sha256(f"{request_id}|{meeting_id}".encode()).hexdigest()


def best_fit_order(
    rooms: Iterable[Room],
    pool_order: Sequence[str],
    request_id: str | None,
    *,
    last: Collection[str] = (),
) -> list[str]:
    """The Meeting IDs of the active ``rooms`` of the pools in ``pool_order``, in the order
    :func:`choose_room` prefers them when free (own pool before overflow, the smallest
    capacity first, ties by :func:`tie_order`), those in ``last`` after all the others."""
    ranked = sorted(
        (r for r in rooms if r.active and r.pool in pool_order),
        key=lambda r: (
            r.meeting_id in last,
            pool_order.index(r.pool),
            r.capacity,
            tie_order(request_id, r.meeting_id),
        ),
    )
    return [room.meeting_id for room in ranked]


def choose_room(
    rooms: Iterable[Room],
    busy_meeting_ids: Collection[str],
    participants: int,
    pool_order: Sequence[str],
    held: Collection[str] = (),
    *,
    request_id: str | None = None,
) -> Room | Rejection:
    """Best fit: the smallest free active room that holds everyone, province pool before overflow.

    Ties between rooms of one capacity are broken by :func:`tie_order`: the same
    request gets the same room in every allocator process, while concurrent
    requests spread over the equal rooms instead of all racing for the first
    one (which made every lost race cost a round of store operations).

    A room this request already ``held`` (slots left by an attempt that crashed
    before deciding) wins if it still fits, so a redelivery adopts its own
    slots instead of leaving them to the orphan sweeper.
    """
    active = [r for r in rooms if r.active and r.pool in pool_order]
    if not active:
        return reject(
            RejectionReason.pool_empty,
            "จังหวัดนี้ยังไม่มีหมายเลขห้องประชุม",
            "there are no meeting rooms for this province",
        )
    if participants > max(r.capacity for r in active):
        return reject(
            RejectionReason.capacity_exceeded,
            "จำนวนผู้เข้าร่วมเกินความจุของห้องประชุมที่ใหญ่ที่สุด",
            "more participants than the largest room holds",
        )
    free = [
        r for r in active if r.capacity >= participants and r.meeting_id not in busy_meeting_ids
    ]
    for room in sorted(free, key=lambda r: (pool_order.index(r.pool), r.capacity, r.meeting_id)):
        if room.meeting_id in held:
            return room
    ranked = best_fit_order(free, pool_order, request_id)
    if ranked:
        return next(room for room in free if room.meeting_id == ranked[0])
    return reject(
        RejectionReason.no_room_free,
        "ไม่มีห้องประชุมว่างในช่วงเวลาที่ขอ",
        "no room is free for the requested time",
    )


@dataclass(frozen=True, slots=True)
class PoolAvailability:
    """How many rooms of one pool are free for a window and size, of how many that fit."""

    pool: str
    free: int
    fitting: int


@dataclass(frozen=True, slots=True)
class Availability:
    """Rooms an office may use that are free for a window and size: a hint for people (the
    unique slot index still decides), and the list an operator reassigns from."""

    pools: tuple[PoolAvailability, ...]
    free_rooms: tuple[Room, ...]
    largest_capacity: int

    @property
    def free(self) -> int:
        return len(self.free_rooms)


def availability(
    rooms: Iterable[Room],
    busy_meeting_ids: Collection[str],
    participants: int,
    pool_order: Sequence[str],
) -> Availability:
    """The active rooms of ``pool_order`` that hold ``participants`` and nobody holds, in the
    order the allocator would pick them (province pool first, smallest room first)."""
    active = [r for r in rooms if r.active and r.pool in pool_order]
    fitting = [r for r in active if r.capacity >= participants]
    free = sorted(
        (r for r in fitting if r.meeting_id not in busy_meeting_ids),
        key=lambda r: (pool_order.index(r.pool), r.capacity, r.meeting_id),
    )
    per_pool = tuple(
        PoolAvailability(
            pool,
            free=sum(1 for r in free if r.pool == pool),
            fitting=sum(1 for r in fitting if r.pool == pool),
        )
        for pool in pool_order
    )
    largest = max((r.capacity for r in active), default=0)
    return Availability(per_pool, tuple(free), largest)


def remaining_span(
    starts_at: datetime, ends_at: datetime, now: datetime, policy: AllocationPolicy
) -> Span:
    """The slots a reservation of this window holds from now on: all of them for a meeting
    not yet begun, the rest of it (from the slot running now) for one under way."""
    return occupied_span(max(starts_at, now), ends_at, policy)


class ReassignRefused(Exception):
    """A booking cannot be moved to the room asked for; the message says why, for people.
    ``conflict``: the state of things forbids it now (409), else the room asked for is not
    one the booking may have (422)."""

    def __init__(self, reason: str, *, conflict: bool = True) -> None:
        super().__init__(reason)
        self.conflict = conflict


def check_reassign(
    reservation: Reservation | None, room: Room | None, meeting_id: str, now: datetime
) -> tuple[Reservation, Room]:
    """The live reservation and the room it may move to (``room``: found by ``meeting_id``
    among the active rooms of the pools the office may use), or :class:`ReassignRefused`
    saying why."""
    if reservation is None:
        raise ReassignRefused(
            "the request holds no room (not allocated yet, rejected or cancelled)"
        )
    if reservation.ends_at <= now:
        raise ReassignRefused("the meeting has ended")
    if meeting_id == reservation.meeting_id:
        raise ReassignRefused(f"the booking is already in room {meeting_id}")
    if room is None:
        raise ReassignRefused(
            f"{meeting_id} is not an active room of the pools office "
            f"{reservation.district_code} may use",
            conflict=False,
        )
    if room.capacity < reservation.participants:
        raise ReassignRefused(
            f"room {meeting_id} holds {room.capacity}, the meeting has "
            f"{reservation.participants} participants",
            conflict=False,
        )
    return reservation, room


def check_office(district_code: str, province_code: str) -> Rejection | None:
    """Rejects a district code that is no DOPA district office, or not one of that province."""
    office = find_office(district_code)
    if office is None or office.province_code != province_code:
        return reject(
            RejectionReason.unknown_office,
            "ไม่พบรหัสที่ทำการปกครองอำเภอนี้",
            "no district office has this code",
        )
    return None


def pools_for(province_code: str, *, use_overflow: bool) -> list[str]:
    """The pools a province may draw from, in order: its own, then its region's overflow."""
    region = region_of(province_code)
    if use_overflow and region is not None:
        return [province_code, f"region-{region}"]
    return [province_code]


def reject(reason: RejectionReason, message_th: str, message_en: str) -> Rejection:
    return Rejection(reason, message_th, message_en)


def _floor(moment: datetime, step: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // step) * step


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floored = _floor(moment, step)
    return floored if floored == moment else floored + step
