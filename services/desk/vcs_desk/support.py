"""What can be done with support tickets, one named function per action.

The HTTP routes and the event handlers call these; each loads the ticket, applies the
rule of :mod:`vcs_desk.tickets` and stores the result with its event in one write
(:mod:`vcs_desk.ticket_store`). An operator's action (:func:`claim_ticket`,
:func:`finish_ticket`) is where its audit entry belongs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from vcs_desk.ticket_store import Moved, TicketStore
from vcs_desk.tickets import Ticket
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.auth import Principal
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.events import Contact, Event, RequestCancelled, RequestSubmitted
from vcs_shared.outbox import ConcurrentChanges
from vcs_shared.thaitime import BANGKOK

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SupportDeps:
    store: TicketStore
    sealer: CredentialsSealer
    """Opens the contact of a request that asks for staff (it travels sealed)."""
    clock: Clock = utc_now


class NoSuchTicket(LookupError):
    """No ticket with that id that the caller may see."""


class TicketBusy(RuntimeError):
    """The ticket kept changing while being moved; the caller may try again."""


async def ask_for_support(
    deps: SupportDeps,
    principal: Principal,
    *,
    district_code: str,
    topic: str,
    contact: Contact,
    idempotency_key: str | None,
) -> tuple[Ticket, bool]:
    """An office asks for staff without a meeting; the ticket, and whether it is new (the
    same Idempotency-Key again finds the first one)."""
    ticket = Ticket.asked(
        district_code=district_code,
        topic=topic,
        contact=contact,
        by=principal,
        at=deps.clock(),
        idempotency_key=idempotency_key,
    )
    stored, created = await deps.store.open(ticket, correlation_id=None)
    if created:
        log.info("support.requested", ticket_id=stored.ticket_id, origin="office")
    return stored, created


async def open_for_request(
    deps: SupportDeps, event: RequestSubmitted, correlation_id: str | None
) -> Ticket | None:
    """A request that asked for staff opens its ticket (once, however often it arrives)."""
    if not event.needs_support:
        return None
    contact = deps.sealer.open_contact(event.sealed_contact)
    ticket, created = await deps.store.open(
        Ticket.for_request(event, contact, at=deps.clock()), correlation_id
    )
    if created:
        log.info("support.requested", ticket_id=ticket.ticket_id, origin="request")
    return ticket


async def close_for_cancelled_request(
    deps: SupportDeps, event: RequestCancelled, correlation_id: str | None
) -> Ticket | None:
    """The meeting was cancelled: its open or claimed ticket closes (nobody travels for a
    meeting that will not happen); no ticket, or one already done, is left as it is."""
    at = deps.clock()
    return await _move(
        deps, event.request_id, None, lambda t: t.closed_with_request(at=at), correlation_id
    )


async def claim_ticket(
    deps: SupportDeps, principal: Principal, ticket_id: str, *, helper: str, visit_at: datetime
) -> Ticket:
    """An operator takes the ticket: ``helper`` will help the office at ``visit_at``."""
    at = deps.clock()
    ticket = await _move(
        deps,
        ticket_id,
        principal,
        lambda t: t.claimed(helper=helper, visit_at=visit_at, by=principal.subject, at=at),
        None,
        audit=lambda before, after: _entry(
            principal,
            AuditAction.support_claim,
            after,
            before=before.state.value,
            after=f"claimed: {helper} will help, {visit_at.astimezone(BANGKOK):%Y-%m-%d %H:%M}",
            at=at,
        ),
    )
    if ticket is None:
        raise NoSuchTicket(ticket_id)
    log.info("support.claimed", ticket_id=ticket_id, operator=principal.subject)
    return ticket


async def finish_ticket(
    deps: SupportDeps, principal: Principal, ticket_id: str, *, note: str
) -> Ticket:
    """An operator marks the claimed ticket done, with a note of what was done."""
    at = deps.clock()
    ticket = await _move(
        deps,
        ticket_id,
        principal,
        lambda t: t.finished(note=note, by=principal.subject, at=at),
        None,
        audit=lambda before, after: _entry(
            principal,
            AuditAction.support_done,
            after,
            before=f"{before.state.value} by {before.claim.helper}" if before.claim else None,
            after=f"done: {note}",
            at=at,
        ),
    )
    if ticket is None:
        raise NoSuchTicket(ticket_id)
    log.info("support.done", ticket_id=ticket_id, operator=principal.subject)
    return ticket


async def visible_ticket(deps: SupportDeps, principal: Principal, ticket_id: str) -> Ticket:
    ticket = await deps.store.get(ticket_id)
    if ticket is None or not ticket.visible_to(principal):
        raise NoSuchTicket(ticket_id)
    return ticket


def _entry(
    principal: Principal,
    action: AuditAction,
    ticket: Ticket,
    *,
    before: str | None,
    after: str,
    at: datetime,
) -> AuditRecorded:
    """The audit entry of an operator's move of a ticket."""
    return AuditRecorded(
        actor=Actor.of(principal),
        action=action,
        target=Target(kind="support_ticket", id=ticket.ticket_id),
        provinces=(ticket.province_code,),
        before=before,
        after=after[:2000],
        at=at,
    )


async def _move(
    deps: SupportDeps,
    ticket_id: str,
    principal: Principal | None,
    rule: Callable[[Ticket], tuple[Ticket, Event] | None],
    correlation_id: str | None,
    *,
    audit: Callable[[Ticket, Ticket], AuditRecorded] | None = None,
) -> Ticket | None:
    """Applies ``rule`` to the ticket (``principal``: only one it may see) and stores the
    result with its event (and ``audit``'s entry for the move, in the same write); None when
    there is no ticket, the ticket as it is when the rule left it so. A
    :class:`~vcs_desk.tickets.TicketConflict` from the rule goes to the caller."""

    def applied(ticket: Ticket) -> Moved | None:
        if principal is not None and not ticket.visible_to(principal):
            raise NoSuchTicket(ticket_id)
        moved = rule(ticket)
        if moved is None:
            return None
        after, event = moved
        return Moved(after, event, (audit(ticket, after),) if audit is not None else ())

    try:
        return await deps.store.move(ticket_id, applied, correlation_id)
    except ConcurrentChanges:
        raise TicketBusy(ticket_id) from None
