"""What the allocator does with each event: plain async functions over their dependencies.

Every handler is idempotent. The decision document of a request is written
once (unique ``_id``) together with the events announcing it, so a redelivered
``request.submitted`` finds the decision and changes nothing, and a crash after
the write loses nothing: the outbox relay publishes what was stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog

from vcs_allocator.domain import (
    AllocationPolicy,
    Rejection,
    Room,
    check_office,
    check_window,
    choose_room,
    occupied_span,
    pools_for,
    probe_slots,
    slot_starts,
)
from vcs_allocator.store import ReservationStore
from vcs_shared.broker import Handler, RetryLater
from vcs_shared.credentials import CredentialsSealer, MeetingCredentials
from vcs_shared.envelope import Envelope, OutgoingMessage, encode
from vcs_shared.events import (
    Event,
    RequestCancelled,
    RequestRejected,
    RequestSubmitted,
    RoomAssigned,
    RoomReleased,
)
from vcs_shared.outbox import OutboxRelay, outbox_fields

log = structlog.get_logger(__name__)

SOURCE = "allocator"


CLAIM_ROUNDS = 5
"""Lost races allowed beyond one per candidate room before an allocation retries later."""


@dataclass(frozen=True, slots=True)
class AllocatorDeps:
    """What the handlers are given by the composition root."""

    store: ReservationStore
    relay: OutboxRelay
    sealer: CredentialsSealer
    policy: AllocationPolicy
    use_overflow: bool = True
    claim_lease: timedelta = timedelta(minutes=10)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :func:`_decide` settled on, and what a crashed earlier attempt left to give back."""

    result: Rejection | Room
    leftover: frozenset[str] = frozenset()
    claimed_at: float = 0.0


async def allocate(envelope: Envelope, deps: AllocatorDeps) -> None:
    """request.submitted → room.assigned or request.rejected, exactly once per request."""
    event = envelope.event
    assert isinstance(event, RequestSubmitted)
    if await deps.store.decision(event.request_id) is not None:
        log.info("allocation.duplicate")
        return
    outcome = await _decide(event, deps)
    base = {
        "_id": event.request_id,
        "province_code": event.province_code,
        "district_code": event.district_code,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "participants": event.participants,
        "decided_at": deps.clock(),
        "released": False,
    }
    if isinstance(outcome.result, Rejection):
        rejection = outcome.result
        message = encode(
            RequestRejected(
                request_id=event.request_id,
                province_code=event.province_code,
                district_code=event.district_code,
                reason=rejection.reason,
                message_th=rejection.message_th,
                message_en=rejection.message_en,
            ),
            source=SOURCE,
            correlation_id=envelope.correlation_id,
        )
        decision = {**base, "outcome": "rejected", "reason": rejection.reason.value}
        earlier = await _record(decision, message, deps)
        await _give_back(outcome.leftover, event.request_id, deps, kept=_room_of(earlier))
        log.info("allocation.rejected", reason=rejection.reason.value)
        return
    room = outcome.result
    if time.monotonic() - outcome.claimed_at > deps.claim_lease.total_seconds() / 2:
        # The orphan sweeper may free a claim this old: claim afresh rather than trust it.
        decided = await deps.store.decision(event.request_id)
        await _give_back({room.meeting_id}, event.request_id, deps, kept=_room_of(decided))
        raise RetryLater("the claim outlived half its lease before it was decided")
    message = encode(
        RoomAssigned(
            request_id=event.request_id,
            province_code=event.province_code,
            district_code=event.district_code,
            meeting_id=room.meeting_id,
            capacity=room.capacity,
            join_url=room.public_join_url,
            pool="province" if room.pool == event.province_code else "overflow",
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            sealed_credentials=deps.sealer.seal(
                MeetingCredentials(passcode=room.passcode, join_url=room.join_url)
            ),
        ),
        source=SOURCE,
        correlation_id=envelope.correlation_id,
    )
    decision = {
        **base,
        "outcome": "assigned",
        "meeting_id": room.meeting_id,
        "capacity": room.capacity,
        "pool": room.pool,
    }
    earlier = await _record(decision, message, deps)
    kept = room.meeting_id if earlier is None else _room_of(earlier)
    await _give_back({*outcome.leftover, room.meeting_id}, event.request_id, deps, kept=kept)
    if kept != room.meeting_id:
        log.info("allocation.lost_race", kept=earlier.get("outcome") if earlier else None)
        return
    log.info("allocation.assigned", meeting_id=room.meeting_id, capacity=room.capacity)


async def _decide(event: RequestSubmitted, deps: AllocatorDeps) -> Outcome:
    """Applies the rules and claims the chosen room's slots; the unique index settles races.

    After a lost race the slots are read again rather than the lost room merely
    struck off: the read shows every room rivals took meanwhile (one lost race,
    not one per room), and a rival that rolled back leaves its room free again,
    so no request is refused because of a claim that did not last. Each lost
    race means a room became busy, so the loop ends; a pathological churn
    makes the message retry later instead of looping on.
    """
    rejection = check_office(event.district_code, event.province_code) or check_window(
        event.starts_at, event.ends_at, deps.clock(), deps.policy
    )
    if rejection is not None:
        return Outcome(rejection)
    pools = pools_for(event.province_code, use_overflow=deps.use_overflow)
    rooms = await deps.store.rooms(pools)
    candidates = [r.meeting_id for r in rooms if r.capacity >= event.participants]
    span = occupied_span(event.starts_at, event.ends_at, deps.policy)
    slots = slot_starts(span, deps.policy.slot)
    probes = probe_slots(slots, deps.policy)
    occupancy = await deps.store.occupancy(candidates, probes, event.request_id)
    for _ in range(len(rooms) + CLAIM_ROUNDS):
        choice = choose_room(
            rooms,
            occupancy.busy,
            event.participants,
            pools,
            occupancy.held,
            request_id=event.request_id,
        )
        if isinstance(choice, Rejection):
            return Outcome(choice, occupancy.held)
        claimed_at = time.monotonic()
        adopt = choice.meeting_id in occupancy.held
        if await deps.store.claim(choice.meeting_id, event.request_id, slots, adopt=adopt):
            return Outcome(choice, occupancy.held - {choice.meeting_id}, claimed_at)
        occupancy = await deps.store.occupancy(candidates, probes, event.request_id)
    raise RetryLater("rooms kept changing hands while claiming")


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


def _room_of(decision: dict[str, Any] | None) -> str | None:
    """The Meeting ID a stored decision holds, if it is a live assignment."""
    if decision is None or decision.get("outcome") != "assigned" or decision.get("released"):
        return None
    meeting_id: str | None = decision.get("meeting_id")
    return meeting_id


async def _record(
    decision: dict[str, Any], message: OutgoingMessage, deps: AllocatorDeps
) -> dict[str, Any] | None:
    """Stores the decision with its outbox and publishes; returns an earlier decision if any."""
    outbox = outbox_fields([], [message])
    earlier = await deps.store.record_decision({**decision, **outbox})
    if earlier is None:
        await deps.relay.publish_now(decision["_id"], outbox["outbox"])
    return earlier


async def release(envelope: Envelope, deps: AllocatorDeps) -> None:
    """request.cancelled → the slots are freed at once → room.released (if a room was held)."""
    event = envelope.event
    assert isinstance(event, RequestCancelled)
    decision = await deps.store.decision(event.request_id)
    if decision is None:
        cancelled = {
            "_id": event.request_id,
            "province_code": event.province_code,
            "district_code": event.district_code,
            "outcome": "cancelled",
            "decided_at": deps.clock(),
            "released": True,
            **outbox_fields([], []),
        }
        earlier = await deps.store.record_decision(cancelled)
        if earlier is None:
            log.info("release.cancelled_before_allocation")
            return
        decision = earlier
    if decision["outcome"] != "assigned" or decision.get("released"):
        log.info("release.nothing_held", outcome=decision["outcome"])
        return
    await deps.store.release_slots(event.request_id)
    message = encode(
        RoomReleased(
            request_id=event.request_id,
            province_code=event.province_code,
            district_code=event.district_code,
            meeting_id=decision["meeting_id"],
            starts_at=decision["starts_at"],
            ends_at=decision["ends_at"],
        ),
        source=SOURCE,
        correlation_id=envelope.correlation_id,
    )
    written = await deps.store.mark_released(event.request_id, [message])
    if written is not None:
        await deps.relay.publish_now(event.request_id, written)
        log.info("release.released", meeting_id=decision["meeting_id"])


def handler_table(deps: AllocatorDeps) -> Mapping[type[Event], Handler]:
    """The one explicit event-to-handler table of the allocator."""
    return {
        RequestSubmitted: partial(allocate, deps=deps),
        RequestCancelled: partial(release, deps=deps),
    }
