"""The operators' read models of requests, forwarded by the intake (issue 13):

* ``GET /v1/admin/requests?province=&district=&status=&date=&urgency=&needs_support=&stuck=
  &limit=&cursor=`` — the caller's requests, newest first, ``{"items": [...], "next": cursor}``;
  ``date`` is the Asia/Bangkok day the meeting starts; a province or district outside the
  caller's provinces is ``403`` naming it, as in the other admin lists.
* ``GET /v1/admin/requests/{id}/history`` — every event of the request in order, with its
  time and actor, merged with the audit entries targeting it (who cancelled, moved or resent
  it); ``404`` outside the caller's provinces.

No passcode is ever here: the read model never keeps one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from vcs_desk.audit_api import AuditLogDep
from vcs_desk.request_board import BoardQuery, RequestBoard
from vcs_shared.events import Urgency
from vcs_shared.http_auth import (
    OperatorScope,
    ProvinceFilter,
    not_in_scope,
    operator_router,
    outside_scope,
)
from vcs_shared.paging import decode_cursor, encode_cursor
from vcs_shared.request_status import Status
from vcs_shared.store import Document

MAX_PAGE = 200

router = operator_router("/v1/admin/requests", tags=["admin"])


class RequestItem(BaseModel):
    request_id: str
    district_code: str = Field(description="The office")
    province_code: str
    title: str | None = Field(description="None until request.submitted reached the desk")
    starts_at: datetime | None
    ends_at: datetime | None
    participants: int | None
    urgency: Urgency | None
    needs_support: bool | None
    status: Status
    meeting_id: str | None = Field(description="The room's Meeting ID (never a passcode)")
    submitted_at: datetime | None


class RequestPage(BaseModel):
    items: list[RequestItem]
    next: str | None = Field(description="Pass back as `cursor` for the following page")


class HistoryActor(BaseModel):
    id: str
    name: str
    kind: str | None = None


class HistoryEntry(BaseModel):
    at: datetime
    event: str = Field(description="The event's name, or the audited action (`request_cancel`)")
    actor: HistoryActor | None
    summary: str | None
    source: str = Field(description="`event` (from vcs.events) or `audit` (the audit log)")


class RequestHistory(BaseModel):
    request_id: str
    items: list[HistoryEntry]


def get_board(request: Request) -> RequestBoard:
    board: RequestBoard = request.app.state.request_board
    return board


BoardDep = Annotated[RequestBoard, Depends(get_board)]


def _bad(field: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}],
    )


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _item(row: Document) -> RequestItem:
    return RequestItem(
        request_id=row["_id"],
        district_code=row["district_code"],
        province_code=row["province_code"],
        title=row.get("title"),
        starts_at=_at(row.get("starts_ms")),
        ends_at=_at(row.get("ends_ms")),
        participants=row.get("participants"),
        urgency=row.get("urgency"),
        needs_support=row.get("needs_support"),
        status=Status(row["status"]),
        meeting_id=row.get("meeting_id"),
        submitted_at=_at(row.get("submitted_ms")),
    )


@router.get("", response_model=RequestPage)
async def list_requests(
    request: Request,
    board: BoardDep,
    scope: OperatorScope,
    province: ProvinceFilter,
    district: Annotated[str | None, Query(pattern=r"^[0-9]{4}$", description="An office")] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    day: Annotated[
        date | None, Query(alias="date", description="Asia/Bangkok day the meeting starts")
    ] = None,
    urgency: Urgency | None = None,
    needs_support: bool | None = None,
    stuck: Annotated[
        bool | None, Query(description="Not final VCS_STUCK_AFTER_MINUTES after submission")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RequestPage:
    """The caller's requests, newest first."""
    if district is not None and not scope.covers_province(district[:2]):
        raise outside_scope("the district asked for is", [district], scope)
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise _bad("cursor", str(exc)) from None
    query = BoardQuery(
        scope=scope,
        province=province,
        district=district,
        status=status_,
        day=day,
        urgency=urgency,
        needs_support=needs_support,
        stuck=stuck,
        now=datetime.now(UTC),
        stuck_after=request.app.state.stuck_after,
    )
    rows, last = await board.page(query, after=after, limit=limit)
    return RequestPage(items=[_item(r) for r in rows], next=encode_cursor(last) if last else None)


@router.get(
    "/{request_id}/history",
    response_model=RequestHistory,
    responses={404: {"description": "No such request in the caller's provinces"}},
)
async def history(
    request_id: str, board: BoardDep, audit_log: AuditLogDep, scope: OperatorScope
) -> RequestHistory:
    """Every event of the request and every audited action on it, oldest first."""
    row = await board.row(request_id)
    if row is None or not scope.covers_province(row.get("province_code")):
        raise not_in_scope("request")
    entries: list[tuple[tuple[int, int], HistoryEntry]] = []
    for event in await board.events(request_id):
        actor = HistoryActor(id=event["actor"], name=event["actor"]) if event["actor"] else None
        entry = HistoryEntry(
            at=datetime.fromtimestamp(event["at_ms"] / 1000, UTC),
            event=event["event"],
            actor=actor,
            summary=event.get("summary"),
            source="event",
        )
        entries.append(((event["at_ms"], event.get("seq", 0)), entry))
    for logged in await audit_log.about("request", request_id):
        audited = logged.entry
        entry = HistoryEntry(
            at=datetime.fromtimestamp(logged.key[0] / 1000, UTC),  # to the ms, as the events
            event=audited.action.value,
            actor=HistoryActor(
                id=audited.actor.id, name=audited.actor.name, kind=audited.actor.kind
            ),
            summary=audited.after or audited.detail or audited.before,
            source="audit",
        )
        entries.append(((logged.key[0], -1), entry))
    entries.sort(key=lambda pair: pair[0])
    return RequestHistory(request_id=request_id, items=[entry for _, entry in entries])


def install_requests(app: FastAPI, board: RequestBoard, stuck_after: timedelta) -> None:
    """Serves the read model from ``app`` (the composition root calls this)."""
    app.state.request_board = board
    app.state.stuck_after = stuck_after
    app.include_router(router)
