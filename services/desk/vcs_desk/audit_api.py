"""``GET /v1/admin/audit``: the audit log for operators, as JSON pages or as CSV.

Read-only by construction: this router has GET routes only, so a PUT, PATCH, POST or
DELETE on the log is ``405`` (tests check it). Scoped like every admin list: an entry
is shown to operators covering any of its provinces, the national role sees all.

* ``?actor=`` an actor's id or name, ``?action=`` one :class:`~vcs_shared.audit.AuditAction`,
  ``?from=``/``?to=`` a day (Asia/Bangkok, both inclusive) or a moment with its offset;
* newest first, ``limit`` at a time, ``next`` passed back as ``cursor``;
* ``?format=csv`` (or ``/v1/admin/audit.csv``): every entry the filters select, as CSV.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from vcs_desk.audit_log import AuditLog, AuditQuery, LoggedEntry
from vcs_shared.audit import Actor, AuditAction, Target
from vcs_shared.http_auth import OperatorScope, operator_router
from vcs_shared.paging import decode_cursor, encode_cursor
from vcs_shared.thaitime import BANGKOK

CSV_MAX_ROWS = 100_000
CSV_COLUMNS = (
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "outcome",
    "target_kind",
    "target_id",
    "before",
    "after",
    "detail",
    "provinces",
    "id",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula to a spreadsheet: such cells get a leading
apostrophe (entries carry names and e-mails people typed)."""

router = operator_router(
    "/v1/admin", tags=["admin"], responses={422: {"description": "A bad filter or cursor"}}
)


def get_audit_log(request: Request) -> AuditLog:
    audit_log: AuditLog = request.app.state.audit_log
    return audit_log


AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]


class AuditItem(BaseModel):
    id: str = Field(description="The entry's id (the CloudEvent id of its audit.recorded)")
    at: datetime
    actor: Actor
    action: AuditAction
    outcome: Literal["success", "failure"]
    target: Target
    provinces: list[str]
    before: str | None
    after: str | None
    detail: str | None
    source: str = Field(description="The service that recorded it")


class AuditPage(BaseModel):
    items: list[AuditItem]
    next: str | None = Field(description="Pass back as `cursor` for the following page")


def _item(logged: LoggedEntry) -> AuditItem:
    entry = logged.entry
    return AuditItem(
        id=logged.entry_id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        outcome=entry.outcome,
        target=entry.target,
        provinces=list(entry.provinces),
        before=entry.before,
        after=entry.after,
        detail=entry.detail,
        source=logged.source.rsplit("/", 1)[-1],
    )


def _bad(field: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}],
    )


def _moment_ms(value: str | None, field: str, *, end: bool) -> int | None:
    """A day (Asia/Bangkok; ``to`` includes the whole day) or an aware moment, as epoch ms."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + (timedelta(days=1) if end else timedelta(0))
            moment = datetime.combine(day, time(), BANGKOK)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(field, "a day (2026-12-03) or a moment with its offset is expected") from None
    if moment.tzinfo is None:
        raise _bad(field, "a moment needs its offset (+07:00)")
    return int(moment.timestamp() * 1000)


def _query(
    scope: OperatorScope,
    actor: Annotated[str | None, Query(max_length=200, description="Actor id or name")] = None,
    action: AuditAction | None = None,
    from_: Annotated[
        str | None, Query(alias="from", max_length=40, description="Day or moment (inclusive)")
    ] = None,
    to: Annotated[
        str | None, Query(max_length=40, description="Day (inclusive) or moment (exclusive)")
    ] = None,
) -> AuditQuery:
    from_ms = _moment_ms(from_, "from", end=False)
    to_ms = _moment_ms(to, "to", end=True)
    if from_ms is not None and to_ms is not None and to_ms <= from_ms:
        raise _bad("to", "must be after from")
    return AuditQuery(scope=scope, actor=actor or None, action=action, from_ms=from_ms, to_ms=to_ms)


QueryDep = Annotated[AuditQuery, Depends(_query)]


@router.get("/audit", response_model=AuditPage, responses={200: {"content": {"text/csv": {}}}})
async def list_audit(
    query: QueryDep,
    audit_log: AuditLogDep,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    format: Literal["json", "csv"] = "json",
) -> AuditPage | Response:
    """The caller's audit entries, newest first; ``format=csv`` exports them all."""
    if format == "csv":
        return await _csv(query, audit_log)
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise _bad("cursor", str(exc)) from exc
    found = await audit_log.newest(query, after=after, limit=limit + 1)
    shown = found[:limit]
    return AuditPage(
        items=[_item(logged) for logged in shown],
        next=encode_cursor(shown[-1].key) if len(found) > limit else None,
    )


@router.get("/audit.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def export_audit(query: QueryDep, audit_log: AuditLogDep) -> Response:
    """Every entry the filters select, newest first, as CSV (UTF-8 with a BOM for Excel)."""
    return await _csv(query, audit_log)


async def _csv(query: AuditQuery, audit_log: AuditLog) -> Response:
    rows = await audit_log.newest(query, after=None, limit=CSV_MAX_ROWS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for logged in rows:
        item = _item(logged)
        writer.writerow(
            _safe(cell)
            for cell in (
                item.at.astimezone(BANGKOK).isoformat(),
                item.actor.kind,
                item.actor.id,
                item.actor.name,
                item.action.value,
                item.outcome,
                item.target.kind,
                item.target.id,
                item.before or "",
                item.after or "",
                item.detail or "",
                " ".join(item.provinces),
                item.id,
            )
        )
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="dopa-vcs-audit.csv"'},
    )


def _safe(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def install_audit(app: FastAPI, audit_log: AuditLog) -> None:
    """Serves the audit log from ``app`` (the composition root calls this)."""
    app.state.audit_log = audit_log
    app.include_router(router)
