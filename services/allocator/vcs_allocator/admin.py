"""The allocator's internal admin API: pools and reservations, for the regional operators.

Operators reach it through the intake (the one front door), which forwards
``/v1/admin/pools*`` and ``/v1/admin/reservations*`` here with an internal
token (:mod:`vcs_shared.auth`); this API accepts nothing else. It is served by
the allocator process itself (setting ``admin_port``; 0 disables it), because
the allocator owns pools and reservations and no other service reads its
collections. Every route applies the caller's scope (:mod:`vcs_shared.scope`).

* ``GET  /v1/admin/pools?province=&pool=`` — the caller's rooms (never a passcode).
* ``GET  /v1/admin/pools/export?province=&pool=`` — the same rooms as CSV.
* ``POST /v1/admin/pools/reload`` — the body is a whole pool file (``text/csv``
  or ``application/yaml``); it is checked whole first, so a bad file is
  answered ``422`` with every bad line and field, a file naming a pool outside
  the caller's provinces ``403`` naming those pools, and nothing is loaded.
  Effective at once: the allocator reads the rooms on every allocation.
* ``POST /v1/admin/requests/{id}/reassign`` — moves a live booking to another room
  (:mod:`vcs_allocator.reassign`).
* ``GET  /v1/admin/requests/{id}/free-rooms`` — the rooms it could move to.
* ``GET  /v1/availability?district_code=&starts_at=&ends_at=&participants=`` — free
  rooms for a window (:mod:`vcs_allocator.availability_api`; offices too).
* ``GET  /v1/admin/utilisation?province=&from=&to=`` — per Bangkok day and province
  (:mod:`vcs_allocator.utilisation`).
* ``GET  /healthz`` — open: whether the broker and the store are reachable (docker-compose's
  health check).
* ``GET  /v1/admin/reservations?meeting_id=&date=&province=`` — live
  reservations of the caller's provinces whose window touches that Bangkok
  calendar day (default: today).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from datetime import date as date_type
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from vcs_allocator.availability_api import router as availability_router
from vcs_allocator.domain import ReassignRefused, Room
from vcs_allocator.pool import PoolFileError, parse_pool
from vcs_allocator.pool_store import (
    PoolChange,
    PoolMovesRefused,
    PoolReloadConflict,
    PoolsNotYours,
)
from vcs_allocator.reassign import NoSuchBooking, PoolNotYours, Reassigner
from vcs_allocator.store import MongoReservationStore
from vcs_allocator.utilisation import usage_of_day
from vcs_shared.access_log import AccessLog
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.audit_trail import AuditTrail
from vcs_shared.auth import Authenticator, Principal
from vcs_shared.health import HealthCheck, health_router
from vcs_shared.http_auth import (
    OperatorPrincipal,
    OperatorScope,
    ProvinceFilter,
    not_in_scope,
    outside_scope,
    require_operator,
)
from vcs_shared.offices import ALL_PROVINCES, REGION_PROVINCES
from vcs_shared.scope import REGION_POOL_PREFIX, Scope
from vcs_shared.thaitime import BANGKOK, CalendarDay

log = structlog.get_logger(__name__)

POOL_FORMATS: dict[str, Literal["csv", "yaml"]] = {
    "text/csv": "csv",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
}
MAX_POOL_FILE_BYTES = 2_000_000
EXPORT_COLUMNS = ("meeting_id", "capacity", "pool", "active")

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_operator)])

PoolFilter = Annotated[
    str | None,
    Query(pattern=r"^([0-9]{2}|region-[0-9]{1,3})$", description="One pool: 47 or region-12"),
]


class PoolItem(BaseModel):
    """One room of a pool as operators see it: never its passcode or join URL."""

    meeting_id: str
    capacity: int
    pool: str
    active: bool


class PoolList(BaseModel):
    items: list[PoolItem]


class ReloadResult(BaseModel):
    pools: list[str]
    loaded: int
    deactivated: int
    moved: list[str] = []
    """Meeting IDs the file moved from another pool (rows with ``moved_from``)."""
    revision: int = 0
    """The pools' revision after this reload (each reload switches to the next one)."""


class ReservationView(BaseModel):
    request_id: str
    meeting_id: str
    capacity: int
    pool: str
    province_code: str
    district_code: str
    starts_at: datetime
    ends_at: datetime
    participants: int


def _store(request: Request) -> MongoReservationStore:
    store: MongoReservationStore = request.app.state.store
    return store


StoreDep = Annotated[MongoReservationStore, Depends(_store)]


async def _visible_rooms(
    store: MongoReservationStore, scope: Scope, province: str | None, pool: str | None
) -> list[Room]:
    """The caller's rooms, narrowed to one pool when asked (a pool not theirs: 403)."""
    if pool is not None and not scope.covers_pool(pool):
        raise outside_scope("the pool asked for is", [pool], scope)
    if province is not None and pool is not None and province != pool:
        return []
    rooms = await store.all_rooms(pool or province)
    return [room for room in rooms if scope.covers_pool(room.pool)]


@router.get("/pools", response_model=PoolList, responses={403: {"description": "Not your pool"}})
async def list_pools(
    store: StoreDep, scope: OperatorScope, province: ProvinceFilter, pool: PoolFilter = None
) -> PoolList:
    """The rooms of the caller's pools, active or not, by pool, capacity and Meeting ID."""
    rooms = await _visible_rooms(store, scope, province, pool)
    return PoolList(items=[_item(room) for room in rooms])


@router.get(
    "/pools/export",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "meeting_id,capacity,pool,active"}
    },
)
async def export_pools(
    store: StoreDep, scope: OperatorScope, province: ProvinceFilter, pool: PoolFilter = None
) -> Response:
    """The caller's rooms as CSV (``meeting_id,capacity,pool,active``).

    Without passcodes and join URLs, which this API never serves: the export shows
    what is loaded; the operators' own pool file, with the passcodes, stays the
    source a reload is made from.
    """
    rooms = await _visible_rooms(store, scope, province, pool)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {**_item(room).model_dump(), "active": str(room.active).lower()} for room in rooms
    )
    name = "-".join(["pools", *filter(None, [province, pool])])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _item(room: Room) -> PoolItem:
    return PoolItem(
        meeting_id=room.meeting_id, capacity=room.capacity, pool=room.pool, active=room.active
    )


@router.post(
    "/pools/reload",
    response_model=ReloadResult,
    responses={
        403: {"description": "The file names pools outside the caller's provinces"},
        409: {
            "description": "The file moves a Meeting ID from another pool without moved_from, "
            "or other reloads kept switching first; nothing loaded"
        },
        413: {"description": "Larger than 2 MB"},
        415: {"description": "Not text/csv or application/yaml"},
        422: {"description": "Bad lines (each with its line number and field); nothing loaded"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A whole pool file, as operators keep it",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def reload_pools(
    request: Request,
    store: StoreDep,
    scope: OperatorScope,
    principal: OperatorPrincipal,
    trail: TrailDep,
) -> ReloadResult:
    """Replaces the pools the file names; rooms of them it no longer lists become inactive.
    All or nothing, one reload at a time; a Meeting ID of another pool only with
    ``moved_from`` on its row (409 otherwise).

    ``vcs pool load`` sends the file here too, so both are checked the same way. A reload
    that loaded is one entry of the audit log (a refused file changed nothing).
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    fmt = POOL_FORMATS.get(media_type)
    if fmt is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send the pool file as text/csv or application/yaml",
        )
    body = await request.body()
    if len(body) > MAX_POOL_FILE_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="pool file too large")
    try:
        entries = parse_pool(body.decode("utf-8"), fmt=fmt, source="body")
    except UnicodeDecodeError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body"], "msg": f"not UTF-8: {exc}", "type": "encoding"}],
        ) from exc
    except PoolFileError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": [
                        "body",
                        *([] if i.line is None else [i.line]),
                        *([i.field] if i.field else []),
                    ],
                    "line": i.line,
                    "field": i.field or None,
                    "msg": i.message,
                    "type": "pool_file",
                }
                for i in exc.issues
            ],
        ) from exc
    sealer = _reassigner(request).sealer  # passcodes are stored sealed only
    rooms = [entry.sealed(sealer) for entry in entries]
    outside = scope.outside_pools(room.pool for room in rooms)
    if outside:
        raise outside_scope("nothing was loaded: the file names pools", outside, scope)
    named = sorted({room.pool for room in rooms})
    before = Counter(room.pool for room in await store.rooms(named))  # the active ones
    try:
        change: PoolChange = await store.replace_rooms(rooms, may_change=scope.covers_pool)
    except PoolsNotYours as exc:
        raise outside_scope(
            "nothing was loaded: the file moves rooms out of pools", list(exc.pools), scope
        ) from exc
    except (PoolMovesRefused, PoolReloadConflict) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    log.info(
        "pool.reloaded",
        pools=change.pools,
        loaded=change.loaded,
        deactivated=change.deactivated,
        moved=change.moved,
        revision=change.revision,
    )
    await trail.record(_reload_entry(principal, change, before))
    return ReloadResult(
        pools=list(change.pools),
        loaded=change.loaded,
        deactivated=change.deactivated,
        moved=list(change.moved),
        revision=change.revision,
    )


@router.get("/reservations", response_model=list[ReservationView])
async def list_reservations(
    store: StoreDep,
    scope: OperatorScope,
    province: ProvinceFilter,
    meeting_id: Annotated[str | None, Query(pattern=r"^[0-9]{9,11}$")] = None,
    day: Annotated[
        CalendarDay, Query(alias="date", description="Bangkok calendar day (default: today)")
    ] = None,
) -> list[ReservationView]:
    """Live reservations (assigned, not cancelled) of the caller's provinces touching that
    day, earliest first."""
    day = day or datetime.now(BANGKOK).date()
    start = datetime.combine(day, time(0), tzinfo=BANGKOK)
    found = await store.reservations(start, start + timedelta(days=1), meeting_id)
    return [
        ReservationView.model_validate(reservation, from_attributes=True)
        for reservation in found
        if scope.covers_province(reservation.province_code)
        and (province is None or reservation.province_code == province)
    ]


MAX_UTILISATION_DAYS = 92


class UtilisationItem(BaseModel):
    """One province on one Bangkok day."""

    date: date_type
    province_code: str
    rooms: int = Field(description="Active rooms of the province's own pool (as loaded now)")
    hours_booked: float = Field(description="Live assignments' hours within the day")
    hours_available: int = Field(description="rooms times 24: the allocator books around the clock")
    requests: int = Field(description="Decisions whose meeting starts that day")
    rejections: dict[str, int] = Field(description="Rejected requests by reason")


class UtilisationList(BaseModel):
    items: list[UtilisationItem]


def _unprocessable(field_name: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_ENTITY,
        detail=[{"loc": ["query", field_name], "msg": message, "type": "value_error"}],
    )


@router.get(
    "/utilisation",
    response_model=UtilisationList,
    responses={403: {"description": "A province outside the caller's"}},
)
async def utilisation(
    store: StoreDep,
    scope: OperatorScope,
    first: Annotated[date_type, Query(alias="from", description="First Bangkok day")],
    last: Annotated[date_type, Query(alias="to", description="Last Bangkok day (inclusive)")],
    province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
) -> UtilisationList:
    """Per Bangkok day and province of the caller: active rooms, hours booked against hours
    available (active rooms times 24, as the allocator books around the clock), requests and
    rejections by reason. At most 92 days; one indexed query per day."""
    if last < first:
        raise _unprocessable("to", "must not be before from")
    if (last - first).days + 1 > MAX_UTILISATION_DAYS:
        raise _unprocessable("to", f"the range is longer than {MAX_UTILISATION_DAYS} days")
    if province is not None and province not in ALL_PROVINCES:
        raise _unprocessable("province", "no such province")
    if province is not None and not scope.covers_province(province):
        raise outside_scope("the province asked for is", [province], scope)
    provinces = [province] if province else sorted(ALL_PROVINCES & _scope_provinces(scope))
    rooms = Counter(room.pool for room in await store.all_rooms(province) if room.active)
    items: list[UtilisationItem] = []
    day = first
    while day <= last:
        for row in usage_of_day(day, await store.decisions_of_day(day), rooms, provinces):
            items.append(
                UtilisationItem(
                    date=row.day,
                    province_code=row.province_code,
                    rooms=row.rooms,
                    hours_booked=round(row.hours_booked, 2),
                    hours_available=row.hours_available,
                    requests=row.requests,
                    rejections=dict(row.rejections),
                )
            )
        day += timedelta(days=1)
    return UtilisationList(items=items)


def _scope_provinces(scope: Scope) -> frozenset[str]:
    return ALL_PROVINCES if scope.national else frozenset(scope.provinces)


def _reload_entry(
    principal: Principal, change: PoolChange, active_before: Counter[str]
) -> AuditRecorded:
    pools = sorted(change.pools)
    provinces: set[str] = set()
    for pool in pools:
        region = pool.removeprefix(REGION_POOL_PREFIX)
        provinces |= REGION_PROVINCES.get(region, set()) if pool != region else {pool}
    return AuditRecorded(
        actor=Actor.of(principal),
        action=AuditAction.pool_reload,
        target=Target(kind="pool", id=" ".join(pools)),
        provinces=tuple(sorted(provinces)),
        before=", ".join(f"{pool}: {active_before[pool]} active" for pool in pools),
        after=f"{change.loaded} loaded, {change.deactivated} made inactive",
        at=datetime.now(UTC),
    )


def get_trail(request: Request) -> AuditTrail:
    trail: AuditTrail = request.app.state.audit_trail
    return trail


TrailDep = Annotated[AuditTrail, Depends(get_trail)]


class ReassignBody(BaseModel):
    meeting_id: str = Field(pattern=r"^[0-9]{9,11}$", description="The room to move to")


class ReassignResult(BaseModel):
    request_id: str
    old_meeting_id: str
    meeting_id: str
    capacity: int
    pool: str


def _reassigner(request: Request) -> Reassigner:
    reassigner: Reassigner = request.app.state.reassigner
    return reassigner


@router.post(
    "/requests/{request_id}/reassign",
    response_model=ReassignResult,
    responses={
        403: {"description": "The room is of a pool outside the caller's provinces"},
        404: {"description": "No such request in the caller's provinces"},
        409: {"description": "Not possible now (the room is taken, the meeting over, ...); why"},
        422: {"description": "Not a room the office may use, or too small; why"},
    },
)
async def reassign_request(
    request_id: Annotated[str, Path(min_length=1, max_length=100)],
    body: ReassignBody,
    principal: OperatorPrincipal,
    scope: OperatorScope,
    reassigner: Annotated[Reassigner, Depends(_reassigner)],
) -> ReassignResult:
    """Moves a live booking to another room of the pools the office may use, free for the
    (rest of the) window under the same unique slot index as every allocation; the old room
    is released, ``room.reassigned`` announces it, and the office gets the new credentials."""
    try:
        done = await reassigner.reassign(request_id, body.meeting_id, principal)
    except NoSuchBooking as exc:
        raise not_in_scope("request") from exc
    except PoolNotYours as exc:
        raise outside_scope("the room asked for is of pool", [exc.pool], scope) from exc
    except ReassignRefused as exc:
        code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, detail=str(exc)) from exc
    return ReassignResult(
        request_id=done.request_id,
        old_meeting_id=done.old_meeting_id,
        meeting_id=done.new_meeting_id,
        capacity=done.capacity,
        pool=done.pool,
    )


class FreeRoomList(BaseModel):
    items: list[PoolItem]


@router.get(
    "/requests/{request_id}/free-rooms",
    response_model=FreeRoomList,
    responses={
        404: {"description": "No such request in the caller's provinces"},
        409: {"description": "The request holds no room"},
    },
)
async def free_rooms_of_request(
    request_id: Annotated[str, Path(min_length=1, max_length=100)],
    scope: OperatorScope,
    reassigner: Annotated[Reassigner, Depends(_reassigner)],
) -> FreeRoomList:
    """The rooms a live booking could be reassigned to (free for the rest of its window, big
    enough, of the office's pools and the caller's), best fit first."""
    try:
        rooms = await reassigner.free_rooms(request_id, scope)
    except NoSuchBooking as exc:
        raise not_in_scope("request") from exc
    except ReassignRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return FreeRoomList(items=[_item(room) for room in rooms])


def create_admin_app(
    store: MongoReservationStore,
    authenticator: Authenticator,
    reassigner: Reassigner,
    health: HealthCheck,
    trail: AuditTrail,
) -> FastAPI:
    """The internal admin app over the allocator's store (the composition root passes in the
    store, an :class:`~vcs_shared.auth.InternalAuthenticator`, the :class:`Reassigner`, which
    carries the allocation rules, and the reachability check its open ``/healthz`` answers
    with)."""
    app = FastAPI(
        title="DOPA VCS allocator admin (internal)",
        version="1",
        description=(
            "Pools of Zoom Meeting IDs and their reservations, for operators. Internal: "
            "reached through the intake, which forwards /v1/admin/pools* and "
            "/v1/admin/reservations* and /v1/availability with an internal token."
        ),
    )
    app.add_middleware(AccessLog)
    app.state.store = store
    app.state.authenticator = authenticator
    app.state.audit_trail = trail
    app.state.reassigner = reassigner
    app.state.health = health
    app.include_router(router)
    app.include_router(availability_router)
    app.include_router(health_router)
    return app
