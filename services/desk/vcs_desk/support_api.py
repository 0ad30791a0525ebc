"""The support tickets' HTTP API, forwarded by the intake (the one front door).

Offices (tokens and signed-in people) and operators:

* ``POST /v1/support-requests`` — an office asks for staff without a meeting
  (``topic``, ``contact``; ``district_code`` defaults to the office's own; an operator
  may file one for an office of its provinces). ``Idempotency-Key`` as for requests:
  ``201`` for a new ticket, ``200`` with the first one for a retry.
* ``GET /v1/support-requests`` — the caller's tickets (an office its own), newest first.
* ``GET /v1/support-requests/{id}`` — one ticket (a meeting request's ticket has the
  request's id); another office's, or one outside an operator's provinces, is ``404``.

Operators, scoped to their provinces (:mod:`vcs_shared.scope`):

* ``GET  /v1/admin/support?status=open|claimed|done&province=`` — the queue: open and
  claimed oldest first (first asked, first helped), done newest first.
* ``POST /v1/admin/support/{id}/claim`` ``{"helper": "…", "visit_at": "…"}`` — who will
  help, and when; ``409`` if it is claimed or done already.
* ``POST /v1/admin/support/{id}/done`` ``{"note": "…"}`` — ``409`` unless claimed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from vcs_desk.support import (
    NoSuchTicket,
    SupportDeps,
    TicketBusy,
    ask_for_support,
    claim_ticket,
    finish_ticket,
    visible_ticket,
)
from vcs_desk.tickets import Ticket, TicketConflict, TicketState
from vcs_shared.auth import Principal
from vcs_shared.events import Contact, SupportOrigin, SupportResolution
from vcs_shared.http_auth import (
    CurrentPrincipal,
    OperatorPrincipal,
    OperatorScope,
    ProvinceFilter,
    not_in_scope,
    operator_router,
)
from vcs_shared.offices import find_office

MAX_LIST = 500

admin_router = operator_router("/v1/admin/support", tags=["support"])
office_router = APIRouter(prefix="/v1/support-requests", tags=["support"])


def get_support(request: Request) -> SupportDeps:
    deps: SupportDeps = request.app.state.support
    return deps


SupportDep = Annotated[SupportDeps, Depends(get_support)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Asking again with the same key returns the first ticket",
    ),
]


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if any(char in value for char in "\r\n\t\x00"):
        raise ValueError("must be one line of text")
    return value.strip()


class SupportRequestCommand(BaseModel):
    """An office asks for staff to help it, without a meeting request."""

    model_config = {"extra": "forbid"}

    district_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}$",
        description="The office asking (an office's own by default; operators must give it)",
    )
    topic: str = Field(min_length=1, max_length=300, description="What the office needs help with")
    contact: Contact

    _topic_one_line = field_validator("topic")(_one_line)


class ClaimCommand(BaseModel):
    """Who of the centre's staff will help, and when."""

    model_config = {"extra": "forbid"}

    helper: str = Field(min_length=1, max_length=200, description="The staff member who helps")
    visit_at: AwareDatetime = Field(description="When they will help (any offset)")

    _helper_one_line = field_validator("helper")(_one_line)


class DoneCommand(BaseModel):
    model_config = {"extra": "forbid"}

    note: str = Field(min_length=1, max_length=2000, description="What was done")

    @field_validator("note")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank: say what was done")
        return value.strip()


class ClaimView(BaseModel):
    helper: str
    visit_at: datetime
    claimed_by: str
    claimed_at: datetime


class ClosureView(BaseModel):
    resolution: SupportResolution
    done_at: datetime
    note: str | None
    closed_by: str | None


class TicketView(BaseModel):
    ticket_id: str
    request_id: str | None = Field(description="The meeting request it came with, if any")
    origin: SupportOrigin
    status: TicketState
    province_code: str
    district_code: str
    topic: str
    contact: Contact
    requested_at: datetime
    requested_by: str
    starts_at: datetime | None = Field(description="The meeting's start, if it came with one")
    claim: ClaimView | None
    closure: ClosureView | None

    @classmethod
    def of(cls, ticket: Ticket) -> TicketView:
        claim, closure = ticket.claim, ticket.closure
        return cls(
            ticket_id=ticket.ticket_id,
            request_id=ticket.request_id,
            origin=ticket.origin,
            status=ticket.state,
            province_code=ticket.province_code,
            district_code=ticket.district_code,
            topic=ticket.topic,
            contact=ticket.contact,
            requested_at=ticket.requested_at,
            requested_by=ticket.requested_by,
            starts_at=ticket.starts_at,
            claim=None
            if claim is None
            else ClaimView(
                helper=claim.helper,
                visit_at=claim.visit_at,
                claimed_by=claim.claimed_by,
                claimed_at=claim.claimed_at,
            ),
            closure=None
            if closure is None
            else ClosureView(
                resolution=closure.resolution,
                done_at=closure.done_at,
                note=closure.note,
                closed_by=closure.closed_by,
            ),
        )


class TicketPage(BaseModel):
    items: list[TicketView]


def _conflict(exc: TicketConflict | TicketBusy) -> HTTPException:
    detail = str(exc) if isinstance(exc, TicketConflict) else "it is changing; try again"
    return HTTPException(status.HTTP_409_CONFLICT, detail=detail)


def _queue_order(state: TicketState, tickets: list[Ticket]) -> list[Ticket]:
    """Open and claimed: first asked, first helped. Done: the latest first."""
    if state is TicketState.done:
        return sorted(
            tickets,
            key=lambda t: (t.closure.done_at if t.closure else t.requested_at, t.ticket_id),
            reverse=True,
        )
    return sorted(tickets, key=lambda t: (t.requested_at, t.ticket_id))


@admin_router.get("", response_model=TicketPage)
async def support_queue(
    deps: SupportDep,
    scope: OperatorScope,
    province: ProvinceFilter,
    status_: Annotated[
        TicketState, Query(alias="status", description="open, claimed or done")
    ] = TicketState.open,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> TicketPage:
    """The caller's support tickets in one state."""
    found = [
        t
        for t in await deps.store.in_state(status_)
        if scope.covers_province(t.province_code)
        and (province is None or t.province_code == province)
    ]
    return TicketPage(items=[TicketView.of(t) for t in _queue_order(status_, found)[:limit]])


Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "No such ticket in the caller's provinces"}}
CONFLICT: Responses = {409: {"description": "The ticket is not in a state for this"}}


@admin_router.get("/{ticket_id}", response_model=TicketView, responses=NOT_FOUND)
async def support_ticket(
    ticket_id: str, deps: SupportDep, principal: OperatorPrincipal
) -> TicketView:
    try:
        return TicketView.of(await visible_ticket(deps, principal, ticket_id))
    except NoSuchTicket as exc:
        raise not_in_scope("support ticket") from exc


@admin_router.post(
    "/{ticket_id}/claim", response_model=TicketView, responses={**NOT_FOUND, **CONFLICT}
)
async def claim(
    ticket_id: str, command: ClaimCommand, deps: SupportDep, principal: OperatorPrincipal
) -> TicketView:
    """Staff (``helper``) will help the office at ``visit_at``; the office sees it."""
    try:
        ticket = await claim_ticket(
            deps, principal, ticket_id, helper=command.helper, visit_at=command.visit_at
        )
    except NoSuchTicket as exc:
        raise not_in_scope("support ticket") from exc
    except (TicketConflict, TicketBusy) as exc:
        raise _conflict(exc) from exc
    return TicketView.of(ticket)


@admin_router.post(
    "/{ticket_id}/done", response_model=TicketView, responses={**NOT_FOUND, **CONFLICT}
)
async def done(
    ticket_id: str, command: DoneCommand, deps: SupportDep, principal: OperatorPrincipal
) -> TicketView:
    """The claimed ticket is done; the note says what was done."""
    try:
        ticket = await finish_ticket(deps, principal, ticket_id, note=command.note)
    except NoSuchTicket as exc:
        raise not_in_scope("support ticket") from exc
    except (TicketConflict, TicketBusy) as exc:
        raise _conflict(exc) from exc
    return TicketView.of(ticket)


def _asking_district(command: SupportRequestCommand, principal: Principal) -> str:
    """The office the ticket is for, or 403/422 saying why the caller may not ask for it."""
    district = command.district_code or principal.district_code
    if district is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "district_code"],
                    "msg": "an operator names the office it asks for",
                    "type": "missing",
                }
            ],
        )
    office = find_office(district)
    if office is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "district_code"],
                    "msg": f"no district office has the code {district}",
                    "type": "value_error",
                }
            ],
        )
    if not principal.may_act_for(district, office.province_code):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"this caller may not ask for district {district}"
        )
    return district


@office_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketView,
    responses={
        200: {"model": TicketView, "description": "Replay of an earlier ask (same key)"},
        403: {"description": "The caller may not ask for that district"},
    },
)
async def ask(
    command: SupportRequestCommand,
    deps: SupportDep,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> TicketView | JSONResponse:
    """An office asks the centre for staff to help it (no meeting request needed)."""
    district = _asking_district(command, principal)
    ticket, created = await ask_for_support(
        deps,
        principal,
        district_code=district,
        topic=command.topic,
        contact=command.contact,
        idempotency_key=idempotency_key,
    )
    view = TicketView.of(ticket)
    if not created:
        return JSONResponse(view.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    return view


@office_router.get("", response_model=TicketPage)
async def my_tickets(
    deps: SupportDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> TicketPage:
    """An office's own tickets, newest first (an operator: use ``/v1/admin/support``)."""
    if principal.district_code is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="an office's list; operators use /v1/admin/support?status=…",
        )
    found = await deps.store.of_district(principal.district_code)
    found.sort(key=lambda t: (t.requested_at, t.ticket_id), reverse=True)
    return TicketPage(items=[TicketView.of(t) for t in found[:limit]])


@office_router.get("/{ticket_id}", response_model=TicketView, responses=NOT_FOUND)
async def my_ticket(ticket_id: str, deps: SupportDep, principal: CurrentPrincipal) -> TicketView:
    """One ticket: a meeting request's has the request's id."""
    try:
        return TicketView.of(await visible_ticket(deps, principal, ticket_id))
    except NoSuchTicket as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such support ticket") from exc


def install_support(app: FastAPI, deps: SupportDeps) -> None:
    """Serves the support tickets from the desk's internal app (its composition root calls it)."""
    app.state.support = deps
    app.include_router(admin_router)
    app.include_router(office_router)
