"""Support tickets, the letter's third duty: offices ask for staff to help them; no I/O here.

A ticket opens when an office asks: with a meeting request (``needs_support``; the
ticket's id is the request's, so a redelivered ``request.submitted`` finds it) or on
its own (``POST /v1/support-requests``). An operator of the office's province
**claims** it, saying who will help and when; once helped, the operator marks it
**done** with a note. ``open → claimed → done``, nothing else: a second claim is
refused (two operators racing, one wins), and so is finishing a ticket no one
claimed (the note says what the claimed helper did).

A ticket whose meeting is cancelled while it is open or claimed closes by itself
(``resolution = request_cancelled``): nobody should travel to help with a meeting
that will not happen, and the claimed helper sees it under "done".

Each move returns the ticket after it and the event announcing it; the store writes
both at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from vcs_shared.auth import Principal
from vcs_shared.events import (
    Contact,
    RequestSubmitted,
    SupportClaimed,
    SupportDone,
    SupportOrigin,
    SupportRequested,
    SupportResolution,
)
from vcs_shared.offices import office_of
from vcs_shared.scope import Scope

TICKET_NAMESPACE = uuid.UUID("6f1b7b0e-5a7c-4d43-9d0e-2c1f6c9f0a51")
"""Names a ticket asked for with an Idempotency-Key (uuid5), so a retry finds the first."""


class TicketState(StrEnum):
    open = "open"
    claimed = "claimed"
    done = "done"


class TicketConflict(Exception):
    """The move does not fit the ticket's state (claimed already, not claimed yet, done)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Who will help, when, and the operator who said so."""

    helper: str
    visit_at: datetime
    claimed_by: str
    claimed_at: datetime


@dataclass(frozen=True, slots=True)
class Closure:
    """How and when the ticket ended; ``closed_by`` is None when it closed by itself."""

    resolution: SupportResolution
    done_at: datetime
    note: str | None = None
    closed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    origin: SupportOrigin
    province_code: str
    district_code: str
    topic: str
    contact: Contact
    requested_at: datetime
    requested_by: str
    starts_at: datetime | None = None
    """The meeting's start, for a ticket that came with a request."""
    claim: Claim | None = None
    closure: Closure | None = None

    @property
    def state(self) -> TicketState:
        if self.closure is not None:
            return TicketState.done
        return TicketState.claimed if self.claim is not None else TicketState.open

    @property
    def request_id(self) -> str | None:
        """The meeting request it came with, if any (the same id)."""
        return self.ticket_id if self.origin is SupportOrigin.request else None

    @classmethod
    def for_request(cls, event: RequestSubmitted, contact: Contact, *, at: datetime) -> Ticket:
        """The ticket of a request that asked for staff (``needs_support``); ``contact`` is
        the event's, unsealed."""
        return cls(
            ticket_id=event.request_id,
            origin=SupportOrigin.request,
            province_code=event.province_code,
            district_code=event.district_code,
            topic=event.title,
            contact=contact,
            requested_at=at,
            requested_by=f"office:{event.district_code}",
            starts_at=event.starts_at,
        )

    @classmethod
    def asked(
        cls,
        *,
        district_code: str,
        topic: str,
        contact: Contact,
        by: Principal,
        at: datetime,
        idempotency_key: str | None = None,
    ) -> Ticket:
        """A ticket an office asked for without a meeting; its id is derived from the
        Idempotency-Key when there is one, so asking again finds the first ticket."""
        if idempotency_key is None:
            ticket_id = str(uuid.uuid4())
        else:
            ticket_id = str(uuid.uuid5(TICKET_NAMESPACE, f"{district_code}/{idempotency_key}"))
        return cls(
            ticket_id=ticket_id,
            origin=SupportOrigin.office,
            province_code=office_of(district_code).province_code,
            district_code=district_code,
            topic=topic,
            contact=contact,
            requested_at=at,
            requested_by=by.subject,
        )

    def visible_to(self, principal: Principal) -> bool:
        """An office sees its own district's tickets, an operator its provinces'."""
        if principal.is_operator:
            return Scope.of(principal).covers_province(self.province_code)
        return principal.district_code == self.district_code

    def requested(self) -> SupportRequested:
        return SupportRequested(
            **self._subject(),
            origin=self.origin,
            topic=self.topic,
            requested_at=self.requested_at,
        )

    def claimed(
        self, *, helper: str, visit_at: datetime, by: str, at: datetime
    ) -> tuple[Ticket, SupportClaimed]:
        """``open → claimed``; a claimed or done ticket is refused."""
        if self.closure is not None:
            raise TicketConflict("this support request is already done")
        if self.claim is not None:
            raise TicketConflict(
                f"already claimed: {self.claim.helper} will help "
                f"(claimed by {self.claim.claimed_by})"
            )
        claim = Claim(helper=helper, visit_at=visit_at, claimed_by=by, claimed_at=at)
        event = SupportClaimed(**self._subject(), visit_at=visit_at, claimed_at=at)
        return replace(self, claim=claim), event

    def finished(self, *, note: str, by: str, at: datetime) -> tuple[Ticket, SupportDone]:
        """``claimed → done`` with the note of what was done."""
        if self.closure is not None:
            raise TicketConflict("this support request is already done")
        if self.claim is None:
            raise TicketConflict("claim it first: say who helps and when")
        closure = Closure(SupportResolution.helped, done_at=at, note=note, closed_by=by)
        return replace(self, closure=closure), self._done(closure)

    def closed_with_request(self, *, at: datetime) -> tuple[Ticket, SupportDone] | None:
        """The meeting was cancelled: an open or claimed ticket closes; a done one stays."""
        if self.closure is not None:
            return None
        closure = Closure(SupportResolution.request_cancelled, done_at=at)
        return replace(self, closure=closure), self._done(closure)

    def _done(self, closure: Closure) -> SupportDone:
        return SupportDone(
            **self._subject(), resolution=closure.resolution, done_at=closure.done_at
        )

    def _subject(self) -> dict[str, str]:
        return {
            "request_id": self.ticket_id,
            "ticket_id": self.ticket_id,
            "province_code": self.province_code,
            "district_code": self.district_code,
        }
