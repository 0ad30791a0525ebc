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


class TicketStore(Protocol):
    async def open(self, ticket: Ticket, correlation_id: str | None) -> tuple[Ticket, bool]: ...
    async def get(self, ticket_id: str) -> Ticket | None: ...
    async def in_state(self, state: TicketState) -> list[Ticket]: ...
    async def of_district(self, district_code: str) -> list[Ticket]: ...
    async def record(
        self,
        before: Ticket,
        after: Ticket,
        event: Event,
        correlation_id: str | None,
        audit: tuple[AuditRecorded, ...] = (),
    ) -> bool: ...


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

    async def record(
        self,
        before: Ticket,
        after: Ticket,
        event: Event,
        correlation_id: str | None,
        audit: tuple[AuditRecorded, ...] = (),
    ) -> bool:
        """Writes ``after`` with ``event`` (and the operator's ``audit`` entry) if the ticket is
        still in ``before``'s state; False when it moved meanwhile (the caller reads it again
        and applies its rule again)."""
        fields = ticket_to_document(after)
        del fields["_id"]

        def change(current: Document) -> Change | None:
            if current.get("state") != before.state.value:
                return None
            return Change(fields, guard={"state": before.state.value})

        changed = await self._outbox.update(
            before.ticket_id,
            change,
            announce(event, correlation_id=correlation_id, audit=audit),
            projection={"state": 1, "outbox": 1, "outbox_count": 1},
        )
        return changed is not None and changed.written


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
