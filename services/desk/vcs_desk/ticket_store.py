"""The desk's ``support_tickets`` collection: one document per ticket, its events embedded.

Every change of a ticket and the event announcing it are one single-document write
through an :class:`~vcs_shared.outbox.Outbox`; a move is a compare-and-set on the
state the rule was applied to, so two operators claiming at once cannot both win.
Lists filter on one single-field index (``state`` or ``district_code``) and leave the
rest (provinces, order) to Python: tickets are few, and the store serves nothing
better (``$in`` only on ``_id``). Times are epoch milliseconds (``$set`` of a datetime
is not stored faithfully by nx-27017). The document mapping is at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_desk.tickets import Claim, Closure, Ticket, TicketState
from vcs_shared.audit import AuditRecorded
from vcs_shared.broker import EventPublisher
from vcs_shared.events import Contact, Event, SupportOrigin, SupportResolution
from vcs_shared.outbox import OFFLINE, Change, Outbox, announce
from vcs_shared.store import Document, epoch_ms

SOURCE = "desk"
COLLECTION = "support_tickets"


@dataclass(frozen=True, slots=True)
class Moved:
    """What a rule made of a ticket: the ticket after the move, the event announcing it, and
    the operator's audit entries of it."""

    ticket: Ticket
    event: Event
    audit: tuple[AuditRecorded, ...] = ()


MoveRule = Callable[[Ticket], Moved | None]
"""Applied to the ticket as stored: its move, or None when the ticket stays as it is."""


class TicketStore(Protocol):
    async def open(self, ticket: Ticket, correlation_id: str | None) -> tuple[Ticket, bool]: ...
    async def get(self, ticket_id: str) -> Ticket | None: ...
    async def in_state(self, state: TicketState) -> list[Ticket]: ...
    async def of_district(self, district_code: str) -> list[Ticket]: ...
    async def move(
        self, ticket_id: str, rule: MoveRule, correlation_id: str | None
    ) -> Ticket | None: ...


class MongoTicketStore:
    def __init__(self, db: AsyncDatabase[Document], publisher: EventPublisher = OFFLINE) -> None:
        self.tickets = db[COLLECTION]
        self._outbox = Outbox(self.tickets, source=SOURCE, publisher=publisher)
        self.relay = self._outbox.relay

    async def ensure_indexes(self) -> None:
        await self._outbox.ensure_index()
        await self.tickets.create_index("state")
        await self.tickets.create_index("district_code")

    async def open(self, ticket: Ticket, correlation_id: str | None) -> tuple[Ticket, bool]:
        """Stores a new ticket with its ``support.requested``; the ticket already stored under
        that id (a redelivery, a retried Idempotency-Key) and False when there was one."""
        try:
            await self._outbox.insert(
                ticket_to_document(ticket),
                announce(ticket.requested(), correlation_id=correlation_id),
            )
        except DuplicateKeyError:
            existing = await self.get(ticket.ticket_id)
            if existing is None:  # pragma: no cover - a duplicate key names a stored document
                raise
            return existing, False
        return ticket, True

    async def get(self, ticket_id: str) -> Ticket | None:
        document = await self.tickets.find_one({"_id": ticket_id}, {"outbox": 0})
        return None if document is None else ticket_from_document(document)

    async def in_state(self, state: TicketState) -> list[Ticket]:
        found = self.tickets.find({"state": state.value}, {"outbox": 0})
        return [ticket_from_document(document) async for document in found]

    async def of_district(self, district_code: str) -> list[Ticket]:
        found = self.tickets.find({"district_code": district_code}, {"outbox": 0})
        return [ticket_from_document(document) async for document in found]

    async def move(
        self, ticket_id: str, rule: MoveRule, correlation_id: str | None
    ) -> Ticket | None:
        """Applies ``rule`` to the ticket as stored and writes its move with the move's event
        (and audit entries) in one compare-and-set on the state the rule saw; a ticket moved
        meanwhile is read again and the rule applied again. The ticket as it is then, None
        when there is none; what the rule raises goes to the caller, and
        :class:`~vcs_shared.outbox.ConcurrentChanges` when the ticket keeps changing."""

        def change(current: Document) -> Change | None:
            moved = rule(ticket_from_document(current))
            if moved is None:
                return None
            fields = ticket_to_document(moved.ticket)
            del fields["_id"]
            announcement = announce(moved.event, correlation_id=correlation_id, audit=moved.audit)
            return Change(fields, guard={"state": current["state"]}, announcement=announcement)

        changed = await self._outbox.update(ticket_id, change)
        return None if changed is None else ticket_from_document(changed.document)


def _from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def ticket_to_document(ticket: Ticket) -> Document:
    claim, closure = ticket.claim, ticket.closure
    return {
        "_id": ticket.ticket_id,
        "origin": ticket.origin.value,
        "province_code": ticket.province_code,
        "district_code": ticket.district_code,
        "topic": ticket.topic,
        "contact": ticket.contact.model_dump(),
        "requested_ms": epoch_ms(ticket.requested_at),
        "requested_by": ticket.requested_by,
        "starts_ms": None if ticket.starts_at is None else epoch_ms(ticket.starts_at),
        "state": ticket.state.value,
        "claim": None
        if claim is None
        else {
            "helper": claim.helper,
            "visit_ms": epoch_ms(claim.visit_at),
            "claimed_by": claim.claimed_by,
            "claimed_ms": epoch_ms(claim.claimed_at),
        },
        "closure": None
        if closure is None
        else {
            "resolution": closure.resolution.value,
            "done_ms": epoch_ms(closure.done_at),
            "note": closure.note,
            "closed_by": closure.closed_by,
        },
    }


def ticket_from_document(document: Document) -> Ticket:
    claim, closure = document.get("claim"), document.get("closure")
    starts_ms = document.get("starts_ms")
    return Ticket(
        ticket_id=document["_id"],
        origin=SupportOrigin(document["origin"]),
        province_code=document["province_code"],
        district_code=document["district_code"],
        topic=document["topic"],
        contact=Contact.model_validate(document["contact"]),
        requested_at=_from_ms(document["requested_ms"]),
        requested_by=document["requested_by"],
        starts_at=None if starts_ms is None else _from_ms(starts_ms),
        claim=None
        if not claim
        else Claim(
            helper=claim["helper"],
            visit_at=_from_ms(claim["visit_ms"]),
            claimed_by=claim["claimed_by"],
            claimed_at=_from_ms(claim["claimed_ms"]),
        ),
        closure=None
        if not closure
        else Closure(
            resolution=SupportResolution(closure["resolution"]),
            done_at=_from_ms(closure["done_ms"]),
            note=closure.get("note"),
            closed_by=closure.get("closed_by"),
        ),
    )
