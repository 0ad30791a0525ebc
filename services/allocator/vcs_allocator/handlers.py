"""What the allocator does with each event: plain async functions over their dependencies.

Every handler is idempotent. The decision document of a request is written
once (unique ``_id``) together with the events announcing it, so a redelivered
``request.submitted`` finds the decision and changes nothing, and a crash after
the write loses nothing: the outbox relay publishes what was stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog

from vcs_allocator.domain import (
    AllocationPolicy,
    Rejection,
    Room,
    check_window,
    choose_room,
    occupied_span,
    slot_starts,
    unknown_office,
)
from vcs_allocator.store import ReservationStore
from vcs_shared.broker import Handler
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
from vcs_shared.offices import find_office, region_of
from vcs_shared.outbox import OutboxRelay, outbox_fields

log = structlog.get_logger(__name__)

SOURCE = "allocator"


@dataclass(frozen=True, slots=True)
class AllocatorDeps:
    """What the handlers are given by the composition root."""

    store: ReservationStore
    relay: OutboxRelay
    sealer: CredentialsSealer
    policy: AllocationPolicy
    use_overflow: bool = True
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def pools_for(province_code: str, *, use_overflow: bool) -> list[str]:
    """The pools a province may draw from, in order: its own, then its region's overflow."""
    region = region_of(province_code)
    if use_overflow and region is not None:
        return [province_code, f"region-{region}"]
    return [province_code]


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
    if isinstance(outcome, Rejection):
        message = encode(
            RequestRejected(
                request_id=event.request_id,
                province_code=event.province_code,
                district_code=event.district_code,
                reason=outcome.reason,
                message_th=outcome.message_th,
                message_en=outcome.message_en,
            ),
            source=SOURCE,
            correlation_id=envelope.correlation_id,
        )
        decision = {**base, "outcome": "rejected", "reason": outcome.reason.value}
        await _record(decision, message, deps)
        log.info("allocation.rejected", reason=outcome.reason.value)
        return
    room, pool_kind = outcome
    message = encode(
        RoomAssigned(
            request_id=event.request_id,
            province_code=event.province_code,
            district_code=event.district_code,
            meeting_id=room.meeting_id,
            capacity=room.capacity,
            join_url=room.public_join_url,
            pool=pool_kind,
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
    if earlier is not None and earlier.get("meeting_id") != room.meeting_id:
        await deps.store.release_claim(room.meeting_id, event.request_id)
        log.info("allocation.lost_race", kept=earlier.get("outcome"))
        return
    log.info("allocation.assigned", meeting_id=room.meeting_id, capacity=room.capacity)


async def _decide(event: RequestSubmitted, deps: AllocatorDeps) -> Rejection | tuple[Room, str]:
    office = find_office(event.district_code)
    if office is None or office.province_code != event.province_code:
        return unknown_office()
    rejection = check_window(event.starts_at, event.ends_at, deps.clock(), deps.policy)
    if rejection is not None:
        return rejection
    pools = pools_for(event.province_code, use_overflow=deps.use_overflow)
    rooms = await deps.store.rooms(pools)
    span = occupied_span(event.starts_at, event.ends_at, deps.policy)
    busy = await deps.store.busy_meeting_ids((r.meeting_id for r in rooms), span)
    slots = slot_starts(span, deps.policy.slot)
    while True:
        choice = choose_room(rooms, busy, event.participants, pools)
        if isinstance(choice, Rejection):
            return choice
        if await deps.store.claim(choice.meeting_id, event.request_id, slots):
            return choice, "province" if choice.pool == event.province_code else "overflow"
        busy.add(choice.meeting_id)


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
