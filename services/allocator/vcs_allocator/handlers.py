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
from datetime import timedelta

import structlog

from vcs_allocator.booking_credentials import booking_credentials
from vcs_allocator.claims_in_flight import ClaimsInFlight, Noting
from vcs_allocator.domain import (
    AllocationPolicy,
    Decision,
    Rejection,
    Room,
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
            await _assign(envelope, room, settled, deps, sealed)


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
) -> None:
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
        log.info("allocation.lost_race", kept=earlier.outcome.value if earlier else None)
        return
    if earlier is not None:
        log.info("allocation.duplicate", outcome=earlier.outcome.value)
        return
    DECISIONS.labels("assigned").inc()
    log.info("allocation.assigned", meeting_id=room.meeting_id, capacity=room.capacity)


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

    After a lost race the slots are read again rather than the lost room merely
    struck off: the read shows every room rivals took meanwhile (one lost race,
    not one per room), and a rival that rolled back leaves its room free again,
    so no request is refused because of a claim that did not last. Each lost
    race means a room became busy, so the loop ends; a pathological churn
    makes the message retry later instead of looping on.

    Rooms other allocations of this process are claiming for overlapping windows are
    passed over while others fit (:mod:`vcs_allocator.claims_in_flight`), so a burst's
    allocations in one process do not race each other.
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
    candidates = [r.meeting_id for r in rooms if r.capacity >= event.participants]
    span = occupied_span(event.starts_at, event.ends_at, deps.policy)
    slots = claim_keys(span, deps.policy.slot)
    probes = probe_slots(span, deps.policy.slot)
    occupancy = await deps.store.occupancy(candidates, probes, event.request_id)
    maybe_decided = occupancy.held or deps.zoom is not None
    if maybe_decided and await deps.store.decision(event.request_id) is not None:
        return None
    for _ in range(len(rooms) + CLAIM_ROUNDS):
        choice = _choose(event, pools, preferred, rooms, occupancy, noting.taken(slots))
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
        occupancy = await deps.store.occupancy(candidates, probes, event.request_id)
    raise RetryLater("rooms kept changing hands while claiming")


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
