"""What the allocator does with each event: plain async functions over their dependencies.

Every handler is idempotent. The decision of a request is written once (unique
``_id``) together with the events announcing it, so a redelivered
``request.submitted`` changes nothing: its decision insert is refused and it
publishes nothing. A crash after the write loses nothing: the store's outbox
publishes what was stored.

A redelivery does not read the decision first, except when it can matter before that
insert: the occupancy probe shows the request already holding slots (it was assigned, or
an attempt crashed after claiming), or Zoom passcodes are on (a duplicate must not spend a
host's allowance). A request decided without a room (rejected, cancelled) holds no slots,
so its redelivery decides again and loses at the insert; a room it claimed meanwhile is
given back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from vcs_allocator.booking_credentials import booking_credentials
from vcs_allocator.claims_in_flight import ClaimsInFlight, Noting
from vcs_allocator.domain import (
    AllocationPolicy,
    Decision,
    Rejection,
    Room,
    best_fit_order,
    check_office,
    check_window,
    choose_room,
    claim_keys,
    occupied_span,
    pools_for,
    probe_slots,
    released_from,
)
from vcs_allocator.store import Occupancy, ReservationStore
from vcs_allocator.zoom_passcodes import ZoomPasscodes
from vcs_shared.broker import RetryLater
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.dispatch import HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import (
    RequestCancelled,
    RequestRejected,
    RequestSubmitted,
    RoomAssigned,
    RoomReleased,
)
from vcs_shared.metrics import ALLOCATION_SECONDS, CLAIM_RACES_LOST, DECISIONS
from vcs_shared.outbox import announce

log = structlog.get_logger(__name__)

CLAIM_ROUNDS = 5
"""Lost races allowed beyond one per candidate room before an allocation retries later."""
FIRST_READ = 4
"""Candidate rooms whose slots an allocation reads first (then 4, 8, 16 ... more)."""


@dataclass(frozen=True, slots=True)
class AllocatorDeps:
    """What the handlers are given by the composition root."""

    store: ReservationStore
    sealer: CredentialsSealer
    policy: AllocationPolicy
    use_overflow: bool = True
    claim_lease: timedelta = timedelta(minutes=10)
    clock: Clock = utc_now
    zoom: ZoomPasscodes | None = None
    """Per-booking Zoom passcodes (``VCS_ZOOM_*`` set); None: rooms keep their pool passcode."""
    in_flight: ClaimsInFlight = field(default_factory=ClaimsInFlight)
    """The rooms this process's allocations under way are claiming (one per process)."""


@dataclass(frozen=True, slots=True)
class Settled:
    """What :func:`_decide` settled on, and what a crashed earlier attempt left to give back."""

    result: Rejection | Room
    leftover: frozenset[str] = frozenset()
    claimed_at: float = 0.0


async def allocate(envelope: Envelope[RequestSubmitted], deps: AllocatorDeps) -> None:
    """request.submitted → room.assigned or request.rejected, exactly once per request."""
    event = envelope.event
    with ALLOCATION_SECONDS.time(), deps.in_flight.allocation(event.request_id) as noting:
        settled = await _decide(event, deps, noting)
        if settled is None:
            log.info("allocation.duplicate")
        elif isinstance(settled.result, Rejection):
            await _reject(envelope, settled.result, settled.leftover, deps)
        else:
            room = settled.result
            sealed = await booking_credentials(
                deps.sealer, deps.zoom, event.request_id, event.starts_at, room
            )
            if isinstance(sealed, Rejection):
                await _reject(envelope, sealed, {*settled.leftover, room.meeting_id}, deps)
                return
            if await _assign(envelope, room, settled, deps, sealed):
                noting.keep(room.meeting_id)


async def _reject(
    envelope: Envelope[RequestSubmitted],
    rejection: Rejection,
    leftover: Iterable[str],
    deps: AllocatorDeps,
) -> None:
    event = envelope.event
    rejected = RequestRejected(
        **event.subject(),
        reason=rejection.reason,
        message_th=rejection.message_th,
        message_en=rejection.message_en,
    )
    decision = Decision.rejected(event, rejection.reason, at=deps.clock())
    announcement = announce(rejected, correlation_id=envelope.correlation_id)
    earlier = await deps.store.record_decision(decision, announcement)
    await _give_back(leftover, event.request_id, deps, kept=_held(earlier))
    if earlier is not None:
        log.info("allocation.duplicate", outcome=earlier.outcome.value)
        return
    DECISIONS.labels(rejection.reason.value).inc()
    log.info("allocation.rejected", reason=rejection.reason.value)


async def _assign(
    envelope: Envelope[RequestSubmitted],
    room: Room,
    settled: Settled,
    deps: AllocatorDeps,
    sealed_credentials: str,
) -> bool:
    """Records the assignment; True if the request holds ``room`` (this write, or a copy's)."""
    event = envelope.event
    if time.monotonic() - settled.claimed_at > deps.claim_lease.total_seconds() / 2:
        # The orphan sweeper may free a claim this old: claim afresh rather than trust it.
        decided = await deps.store.decision(event.request_id)
        await _give_back({room.meeting_id}, event.request_id, deps, kept=_held(decided))
        raise RetryLater("the claim outlived half its lease before it was decided")
    decision = Decision.assigned(event, room, at=deps.clock())
    assigned = _room_assigned(event, room, sealed_credentials)
    announcement = announce(assigned, correlation_id=envelope.correlation_id)
    earlier = await deps.store.record_decision(decision, announcement)
    kept = room.meeting_id if earlier is None else earlier.held_meeting_id
    await _give_back({*settled.leftover, room.meeting_id}, event.request_id, deps, kept=kept)
    if kept != room.meeting_id:
        # Only a copy of this request decides before this one (kept is the room otherwise):
        # a duplicate delivery that claimed another room alongside, given back just above.
        outcome = earlier.outcome.value if earlier else None
        log.info("allocation.duplicate", outcome=outcome, gave_back=room.meeting_id)
        return False
    if earlier is not None:
        log.info("allocation.duplicate", outcome=earlier.outcome.value)
        return True
    DECISIONS.labels("assigned").inc()
    log.info("allocation.assigned", meeting_id=room.meeting_id, capacity=room.capacity)
    return True


def _room_assigned(event: RequestSubmitted, room: Room, sealed_credentials: str) -> RoomAssigned:
    """The public event: the join URL without its passcode; the booking's credentials sealed
    with the current key (the room's, opened only now for the booking, or a fresh passcode)."""
    return RoomAssigned(
        **event.subject(),
        meeting_id=room.meeting_id,
        capacity=room.capacity,
        join_url=room.public_join_url,
        pool=room.pool_kind(event.province_code),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        sealed_credentials=sealed_credentials,
    )


async def _decide(event: RequestSubmitted, deps: AllocatorDeps, noting: Noting) -> Settled | None:
    """Applies the rules and claims the chosen room's slots; the unique index settles races.
    None: the request was decided already (found before claiming, see the module docstring).

    The candidate rooms' slots are read a few rooms at a time (:class:`Candidates`), in the
    order best fit prefers them, rooms this process is claiming or has assigned for
    overlapping windows last (:mod:`vcs_allocator.claims_in_flight`): the first free room
    of that order is best fit's choice, so there is no need to read the rest. With Zoom
    passcodes on, the hosts' allowance orders the rooms instead, and all are read at once.

    A lost race strikes the room off and claims the next free room of what was read, reading
    more only when none is left: with one allocator process lost races are rare (its own
    allocations steer clear of each other), with several they are races between processes
    for a room of a province whose other rooms are mostly still free, and reading the
    rooms again after each (as claims did until 6 Dec) cost one store command per lost
    race, as did asking who held the slot. Before refusing, the rooms struck off are read
    again: a rival that rolled back leaves its room free, so no request is refused because
    of a claim that did not last. A duplicate delivery of the request that claimed the room
    first is struck off like any rival: one of the two records its decision, the other gives
    its room back (:func:`_give_back`). Each round strikes a room off or reads; a
    pathological churn makes the message retry later instead of looping on.
    """
    rejection = check_office(event.district_code, event.province_code) or check_window(
        event.starts_at, event.ends_at, deps.clock(), deps.policy
    )
    if rejection is not None:
        return Settled(rejection)
    pools = pools_for(event.province_code, use_overflow=deps.use_overflow)
    rooms = await deps.store.rooms(pools)
    # Rooms whose Zoom host has allowance left come first, spreading bookings over hosts.
    preferred = rooms if deps.zoom is None else await deps.zoom.preferred(rooms, event.starts_at)
    span = occupied_span(event.starts_at, event.ends_at, deps.policy)
    slots = claim_keys(span, deps.policy.slot)
    fitting = [r for r in rooms if r.capacity >= event.participants]
    fitting_ids = [r.meeting_id for r in fitting]
    candidates = Candidates(
        order=best_fit_order(
            fitting, pools, event.request_id, last=noting.taken(slots, fitting_ids)
        ),
        probes=probe_slots(span, deps.policy.slot),
        request_id=event.request_id,
        at_once=deps.zoom is not None,
    )
    occupancy = await candidates.read(deps.store)
    maybe_decided = occupancy.held or deps.zoom is not None
    if maybe_decided and await deps.store.decision(event.request_id) is not None:
        return None
    for _ in range(len(rooms) + CLAIM_ROUNDS):
        taken = noting.taken(slots, fitting_ids)  # other allocations noted more meanwhile
        choice = candidates.choose(event, pools, rooms, preferred, taken)
        while isinstance(choice, Rejection) or choice.meeting_id in taken:
            if candidates.more:
                occupancy = await candidates.read_more(deps.store)
            elif candidates.struck and isinstance(choice, Rejection):
                occupancy = await candidates.read_again(deps.store)
            else:
                break
            taken = noting.taken(slots, fitting_ids)
            choice = candidates.choose(event, pools, rooms, preferred, taken)
        if isinstance(choice, Rejection):
            return Settled(choice, occupancy.held)
        noting.note(choice.meeting_id, slots)
        claimed_at = time.monotonic()
        adopt = choice.meeting_id in occupancy.held
        claimed = await deps.store.claim(
            choice.meeting_id, event.request_id, slots, adopt=adopt, pool=choice.pool
        )
        if claimed:
            return Settled(choice, occupancy.held - {choice.meeting_id}, claimed_at)
        CLAIM_RACES_LOST.inc()
        occupancy = candidates.strike(choice.meeting_id)
    raise RetryLater("rooms kept changing hands while claiming")


@dataclass(slots=True)
class Candidates:
    """The candidate rooms of one allocation, whose slots are read in chunks, in ``order``.

    The first read takes :data:`FIRST_READ` rooms at every probe and the other candidates at
    the span's first slot only, which every claim inserts first: a room this request already
    holds (a copy of a request whose first attempt crashed after claiming) shows among them,
    is then read whole and wins as before. Each next chunk is twice the rooms read so far,
    the rooms that glance showed busy last (another allocator process's, mostly: this
    process's own come last in ``order`` already). A room lost in a race is struck off
    (:meth:`strike`); :meth:`read_again` reads every room read so far anew.
    """

    order: list[str]
    probes: list[datetime]
    request_id: str
    at_once: bool = False
    read_ids: list[str] = field(default_factory=list)
    occupancy: Occupancy = field(default_factory=lambda: Occupancy(frozenset()))
    struck: bool = False
    """A room was struck off since the rooms were last read."""

    @property
    def more(self) -> bool:
        return len(self.read_ids) < len(self.order)

    def strike(self, meeting_id: str) -> Occupancy:
        """``meeting_id`` was lost in a race: busy from now on, as far as this allocation knows
        (a room this request holds stays in ``held``, so it is given back if not kept)."""
        self.struck = True
        self.occupancy = Occupancy(self.occupancy.busy | {meeting_id}, self.occupancy.held)
        return self.occupancy

    def choose(
        self,
        event: RequestSubmitted,
        pools: Sequence[str],
        rooms: Sequence[Room],
        preferred: Sequence[Room],
        taken: frozenset[str],
    ) -> Room | Rejection:
        """Best fit among the rooms read so far, and the rooms that do not fit (never chosen,
        but they tell "too many participants" apart from "none free")."""
        read = set(self.read_ids)
        candidates = set(self.order)
        visible = [r for r in rooms if r.meeting_id in read or r.meeting_id not in candidates]
        first = visible if preferred is rooms else preferred
        return _choose(event, pools, first, visible, self.occupancy, taken)

    async def read(self, store: ReservationStore) -> Occupancy:
        """The first chunk (every room when ``at_once``), a glance at the others, and the
        rooms this request holds among those."""
        count = len(self.order) if self.at_once else FIRST_READ
        chunk, rest = self.order[:count], self.order[count:]
        if not chunk:  # no room fits at all
            return self.occupancy
        self.read_ids = list(chunk)
        self.occupancy = await store.occupancy(chunk, self.probes, self.request_id, glance=rest)
        held = [m for m in rest if m in self.occupancy.held]
        if held:
            await self._read(store, held)
        return self.occupancy

    async def read_more(self, store: ReservationStore) -> Occupancy:
        read = set(self.read_ids)
        unread = [m for m in self.order if m not in read]
        unread.sort(key=lambda m: m in self.occupancy.busy)  # stable: best fit's order within
        return await self._read(store, unread[: max(FIRST_READ, len(self.read_ids))])

    async def read_again(self, store: ReservationStore) -> Occupancy:
        self.struck = False
        self.occupancy = await store.occupancy(self.read_ids, self.probes, self.request_id)
        return self.occupancy

    async def _read(self, store: ReservationStore, chunk: list[str]) -> Occupancy:
        self.read_ids.extend(chunk)
        seen = await store.occupancy(chunk, self.probes, self.request_id)
        self.occupancy = Occupancy(self.occupancy.busy | seen.busy, self.occupancy.held | seen.held)
        return self.occupancy


def _choose(
    event: RequestSubmitted,
    pools: Sequence[str],
    preferred: Sequence[Room],
    rooms: Sequence[Room],
    occupancy: Occupancy,
    taken: frozenset[str],
) -> Room | Rejection:
    """The room to claim, passing over the rooms ``taken`` by other allocations of this
    process unless nothing else fits (one of those may yet be given back; the unique index
    settles it)."""
    if taken:
        steered = Occupancy(occupancy.busy | taken, occupancy.held)
        choice = _choose_free(event, pools, preferred, rooms, steered)
        if not isinstance(choice, Rejection):
            return choice
    return _choose_free(event, pools, preferred, rooms, occupancy)


def _choose_free(
    event: RequestSubmitted,
    pools: Sequence[str],
    preferred: Sequence[Room],
    rooms: Sequence[Room],
    occupancy: Occupancy,
) -> Room | Rejection:
    """The room to claim: among the preferred order first (hosts with Zoom allowance left),
    then among all rooms when none of those fits."""
    choice = choose_room(
        preferred,
        occupancy.busy,
        event.participants,
        pools,
        occupancy.held,
        request_id=event.request_id,
    )
    if isinstance(choice, Rejection) and preferred is not rooms:
        choice = choose_room(
            rooms,
            occupancy.busy,
            event.participants,
            pools,
            occupancy.held,
            request_id=event.request_id,
        )
    return choice


async def _give_back(
    meeting_ids: Iterable[str], request_id: str, deps: AllocatorDeps, *, kept: str | None
) -> None:
    """Frees this request's slots in rooms it did not end up with.

    ``kept`` is the room of the request's stored decision, whichever process
    wrote it: a duplicate delivery losing the race must never free the
    winner's slots, which carry the same request id.
    """
    for meeting_id in meeting_ids:
        if meeting_id != kept:
            await deps.store.release_claim(meeting_id, request_id)


def _held(decision: Decision | None) -> str | None:
    return None if decision is None else decision.held_meeting_id


async def release(envelope: Envelope[RequestCancelled], deps: AllocatorDeps) -> None:
    """request.cancelled → the slots are freed at once (of a meeting under way: the rest of its
    window, from the next slot after the cancellation) → room.released (if a room was held)."""
    event = envelope.event
    deps.in_flight.cancelled(event.request_id)
    decision = await deps.store.decision(event.request_id)
    if decision is None:
        earlier = await deps.store.record_decision(Decision.cancelled(event, at=deps.clock()))
        if earlier is None:
            log.info("release.cancelled_before_allocation")
            return
        decision = earlier
    reservation = decision.reservation
    if reservation is None:
        log.info("release.nothing_held", outcome=decision.outcome.value)
        return
    starting = released_from(event.cancelled_at, deps.policy)
    await deps.store.release_slots(
        event.request_id, reservation.meeting_id, starting=starting, slot=deps.policy.slot
    )
    released = RoomReleased(
        **event.subject(),
        meeting_id=reservation.meeting_id,
        starts_at=reservation.starts_at,
        ends_at=reservation.ends_at,
    )
    announcement = announce(released, correlation_id=envelope.correlation_id)
    if await deps.store.mark_released(event.request_id, deps.clock(), announcement):
        log.info("release.released", meeting_id=reservation.meeting_id)


HANDLERS = (
    HandlerTable[AllocatorDeps]("allocator")
    .on(RequestSubmitted, allocate)
    .on(RequestCancelled, release)
)
"""The one event-to-handler table of the allocator."""
