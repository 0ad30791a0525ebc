"""``GET /v1/availability``: how many rooms an office may use are free for a window and size.

The allocator owns rooms and slots, so it answers; the intake forwards the call
(an office's token or signed-in clerk, an operator's) with an internal token.
An office asks for its own district only, an operator for the offices of its
provinces (403 naming the office otherwise). The answer counts the active rooms
of the office's pools (its province's, then its region's overflow when the
allocator uses it) that hold the participants and that no booking holds in the
window; operators also get those rooms (the console's reassign list).

A hint, never a promise: the unique slot index decides when the request is
allocated. The query behind it is indexed on the embedded store
(:meth:`~vcs_allocator.store.MongoReservationStore.busy_rooms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel

from vcs_allocator.domain import (
    AllocationPolicy,
    Availability,
    availability,
    pools_for,
    probe_slots,
    remaining_span,
)
from vcs_allocator.store import MongoReservationStore
from vcs_shared.auth import Principal
from vcs_shared.http_auth import CurrentPrincipal
from vcs_shared.offices import find_office

router = APIRouter(tags=["availability"])

MAX_PARTICIPANTS = 10_000


@dataclass(frozen=True, slots=True)
class RoomRules:
    """What the allocation rules the internal API applies are (from the allocator's settings)."""

    policy: AllocationPolicy
    use_overflow: bool
    horizon: timedelta = timedelta(days=3660)
    """Windows further ahead are refused before any slot arithmetic."""


class PoolCount(BaseModel):
    pool: str
    free: int
    fitting: int
    """Active rooms of the pool that hold the participants, free or not."""


class FreeRoom(BaseModel):
    meeting_id: str
    capacity: int
    pool: str


class AvailabilityView(BaseModel):
    """Free rooms for a window and size, of the pools the office may use (a hint)."""

    district_code: str
    province_code: str
    starts_at: datetime
    ends_at: datetime
    participants: int
    free: int
    pools: list[PoolCount]
    largest_capacity: int
    """The largest active room of those pools (0: the province has none)."""
    rooms: list[FreeRoom] | None = None
    """The free rooms, best fit first; for operators only."""


def get_rules(request: Request) -> RoomRules:
    rules: RoomRules = request.app.state.reassigner.rules
    return rules


def get_store(request: Request) -> MongoReservationStore:
    store: MongoReservationStore = request.app.state.store
    return store


async def free_rooms(
    store: MongoReservationStore,
    rules: RoomRules,
    province_code: str,
    starts_at: datetime,
    ends_at: datetime,
    participants: int,
    *,
    now: datetime,
) -> Availability:
    """The rooms of the province's pools free from ``now`` (or the start) to the window's end."""
    pools = pools_for(province_code, use_overflow=rules.use_overflow)
    rooms = await store.rooms(pools)
    span = remaining_span(starts_at, ends_at, now, rules.policy)
    probes = probe_slots(span, rules.policy.slot)
    busy = await store.busy_rooms(pools, probes)
    return availability(rooms, busy, participants, pools)


def _invalid(field: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}],
    )


def check_window(starts_at: datetime, ends_at: datetime, now: datetime, rules: RoomRules) -> None:
    """422 naming the field for a window no room could be free for."""
    if ends_at <= starts_at:
        raise _invalid("ends_at", "the meeting must end after it starts")
    if ends_at - starts_at > rules.policy.max_duration:
        hours = int(rules.policy.max_duration.total_seconds() // 3600)
        raise _invalid("ends_at", f"the meeting is longer than {hours} hours")
    if ends_at <= now:
        raise _invalid("ends_at", "the window is over")
    if starts_at > now + rules.horizon:
        raise _invalid("starts_at", "the window is further ahead than can be booked")


def _may_ask(principal: Principal, district_code: str, province_code: str) -> None:
    if not principal.may_act_for(district_code, province_code):
        whose = "your own office" if principal.district_code else "offices of your provinces"
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"availability is answered for {whose} only, not office {district_code}",
        )


@router.get(
    "/v1/availability",
    response_model=AvailabilityView,
    response_model_exclude_none=True,
    responses={
        403: {"description": "Not the caller's office (or not of the operator's provinces)"},
        422: {"description": "A field is missing or wrong; it is named"},
    },
)
async def get_availability(
    principal: CurrentPrincipal,
    store: Annotated[MongoReservationStore, Depends(get_store)],
    rules: Annotated[RoomRules, Depends(get_rules)],
    district_code: Annotated[str, Query(pattern=r"^[0-9]{4}$")],
    starts_at: AwareDatetime,
    ends_at: AwareDatetime,
    participants: Annotated[int, Query(ge=1, le=MAX_PARTICIPANTS)],
) -> AvailabilityView:
    """How many rooms the office may use are free for the window and size (a hint)."""
    office = find_office(district_code)
    if office is None:
        raise _invalid("district_code", "no district office has this code")
    _may_ask(principal, district_code, office.province_code)
    now = datetime.now(UTC)
    check_window(starts_at, ends_at, now, rules)
    found = await free_rooms(
        store, rules, office.province_code, starts_at, ends_at, participants, now=now
    )
    return AvailabilityView(
        district_code=district_code,
        province_code=office.province_code,
        starts_at=starts_at,
        ends_at=ends_at,
        participants=participants,
        free=found.free,
        pools=[PoolCount(pool=p.pool, free=p.free, fitting=p.fitting) for p in found.pools],
        largest_capacity=found.largest_capacity,
        rooms=(
            [
                FreeRoom(meeting_id=r.meeting_id, capacity=r.capacity, pool=r.pool)
                for r in found.free_rooms
            ]
            if principal.is_operator
            else None
        ),
    )
