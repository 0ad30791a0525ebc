"""The allocator's admin HTTP API: pools and reservations, for the regional operators.

Served by the allocator process itself (setting ``admin_port``; 0 disables
it), because the allocator owns pools and reservations and no other service
reads its collections. All routes are on one :data:`router`, so the operator
role can be required for all of them with one router-level dependency.

* ``GET  /v1/admin/pools`` — the rooms of every pool (never a passcode).
* ``POST /v1/admin/pools/reload`` — the body is a whole pool file (``text/csv``
  or ``application/yaml``); it is checked whole first, so a bad file is
  answered ``422`` with every bad line and field and nothing is loaded.
  Effective at once: the allocator reads the rooms on every allocation.
* ``GET  /v1/admin/reservations?meeting_id=&date=`` — live reservations whose
  window touches that Bangkok calendar day (default: today).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

import structlog
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel

from vcs_allocator.pool import PoolFileError, parse_pool
from vcs_allocator.store import MongoReservationStore
from vcs_shared.auth import Authenticator
from vcs_shared.http_auth import require_operator
from vcs_shared.thaitime import BANGKOK

log = structlog.get_logger(__name__)

POOL_FORMATS: dict[str, Literal["csv", "yaml"]] = {
    "text/csv": "csv",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
}
MAX_POOL_FILE_BYTES = 2_000_000

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_operator)])


class RoomView(BaseModel):
    meeting_id: str
    capacity: int
    active: bool
    join_url: str
    """Without its query string: no passcode is ever shown here."""


class PoolView(BaseModel):
    pool: str
    active_rooms: int
    rooms: list[RoomView]


class PoolsView(BaseModel):
    pools: list[PoolView]


class ReloadResult(BaseModel):
    pools: list[str]
    loaded: int
    deactivated: int


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


@router.get("/pools", response_model=PoolsView)
async def list_pools(
    store: StoreDep,
    pool: Annotated[str | None, Query(description="One pool: 47 or region-12")] = None,
) -> PoolsView:
    """Every stored room by pool, active or not, smallest first."""
    by_pool: dict[str, list[RoomView]] = {}
    for room in await store.all_rooms(pool):
        by_pool.setdefault(room.pool, []).append(
            RoomView(
                meeting_id=room.meeting_id,
                capacity=room.capacity,
                active=room.active,
                join_url=room.public_join_url,
            )
        )
    return PoolsView(
        pools=[
            PoolView(pool=name, active_rooms=sum(r.active for r in rooms), rooms=rooms)
            for name, rooms in by_pool.items()
        ]
    )


@router.post(
    "/pools/reload",
    response_model=ReloadResult,
    responses={
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
async def reload_pools(request: Request, store: StoreDep) -> ReloadResult:
    """Replaces the pools the file names; rooms of them it no longer lists become inactive."""
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
        rooms = parse_pool(body.decode("utf-8"), fmt=fmt, source="body")
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
    change = await store.replace_rooms(rooms)
    log.info(
        "pool.reloaded", pools=change.pools, loaded=change.loaded, deactivated=change.deactivated
    )
    return ReloadResult(
        pools=list(change.pools), loaded=change.loaded, deactivated=change.deactivated
    )


@router.get("/reservations", response_model=list[ReservationView])
async def list_reservations(
    store: StoreDep,
    meeting_id: Annotated[str | None, Query(pattern=r"^[0-9]{9,11}$")] = None,
    day: Annotated[
        date | None, Query(alias="date", description="Bangkok calendar day (default: today)")
    ] = None,
) -> list[ReservationView]:
    """Live reservations (assigned, not cancelled) touching that day, earliest first."""
    day = day or datetime.now(BANGKOK).date()
    start = datetime.combine(day, time(0), tzinfo=BANGKOK)
    found = await store.reservations(start, start + timedelta(days=1), meeting_id)
    return [ReservationView.model_validate(r, from_attributes=True) for r in found]


def create_admin_app(store: MongoReservationStore, authenticator: Authenticator) -> FastAPI:
    """The admin app over the allocator's store (the composition root passes it in).

    Tokens are checked for signature, expiry and role; revocations live in the
    intake's store, which the allocator does not read, so the short lifetime of
    operator tokens is what bounds a revoked one here.
    """
    app = FastAPI(
        title="DOPA VCS allocator admin",
        version="1",
        description="Pools of Zoom Meeting IDs and their reservations, for operators.",
    )
    app.state.store = store
    app.state.authenticator = authenticator
    app.include_router(router)
    return app


class _InProcessServer(uvicorn.Server):
    """uvicorn inside the allocator's event loop; the allocator owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """The admin app served on its own socket; ``stop`` lets requests in flight finish."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    @classmethod
    async def start(cls, app: FastAPI, host: str, port: int) -> AdminServer | None:
        """Binds first, so a taken port is logged and the allocator keeps allocating."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            log.error("admin.unavailable", host=host, port=port, error=str(exc))
            return None
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=10
        )
        server = _InProcessServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="admin-api")
        while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.01)
        if task.done():
            log.error("admin.unavailable", host=host, port=port, error=repr(task.exception()))
            return None
        log.info("admin.listening", host=host, port=port)
        return cls(server, task)

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task
