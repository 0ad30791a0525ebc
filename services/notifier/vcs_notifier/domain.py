"""A delivery as the notifier keeps it: who to write to, and which mails went out; no I/O here.

The contact comes from ``request.submitted`` (event-carried state). Each kind of
mail (:class:`MailKind`) is sent at most once per request: a recorded outcome
is final, whatever copies of its event arrive later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal

from vcs_shared.events import Contact, RequestSubmitted, RoomAssigned, RoomReassigned, Subject


class MailKind(StrEnum):
    assigned = "assigned"
    """The credentials, after room.assigned."""
    released = "released"
    """The notice that the room is no longer the office's, after room.released."""


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """How one kind of mail went: sent, or failed for good with ``error``."""

    kind: MailKind
    state: Literal["delivered", "failed"]
    at: datetime
    channel: Literal["email"] | None = None
    error: str | None = None

    @classmethod
    def of(cls, kind: MailKind, error: str | None, *, at: datetime) -> MailOutcome:
        """The outcome of an e-mail that ended with ``error`` (None: delivered)."""
        return cls(kind, "delivered" if error is None else "failed", at, "email", error)


@dataclass(frozen=True, slots=True)
class Booking:
    """The room reserved for a request, as the notifier keeps it to send the credentials again
    (a redelivery, a reminder): the passcode stays sealed until a message is written."""

    meeting_id: str
    capacity: int
    starts_at: datetime
    ends_at: datetime
    sealed_credentials: str

    @classmethod
    def moved(cls, event: RoomReassigned) -> Booking:
        return cls(
            meeting_id=event.new_meeting_id,
            capacity=event.capacity,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            sealed_credentials=event.sealed_credentials,
        )

    @classmethod
    def of(cls, event: RoomAssigned) -> Booking:
        return cls(
            meeting_id=event.meeting_id,
            capacity=event.capacity,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            sealed_credentials=event.sealed_credentials,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the notifier knows of one request: its contact and title, and the mails recorded."""

    request_id: str
    contact: Contact
    title: str
    province_code: str
    district_code: str
    created_at: datetime
    outcomes: Mapping[MailKind, MailOutcome] = field(default_factory=dict)
    booking: Booking | None = None
    redeliveries: int = 0
    reassignments: int = 0
    """The latest move of the booking (``room.reassigned``) whose credentials were sent."""

    @classmethod
    def of(cls, event: RequestSubmitted, *, at: datetime) -> Delivery:
        return cls(**event.subject(), contact=event.contact, title=event.title, created_at=at)

    def recorded(self, kind: MailKind) -> bool:
        """Whether that mail's outcome is recorded: then it is never sent again by an event
        (only an operator's redelivery sends the credentials again)."""
        return kind in self.outcomes

    def subject(self) -> Subject:
        """The request and office the events about this delivery name."""
        return Subject(
            request_id=self.request_id,
            province_code=self.province_code,
            district_code=self.district_code,
        )

    def with_booking(self, booking: Booking) -> Delivery:
        return replace(self, booking=booking)

    def redelivery_refusal(self) -> str | None:
        """Why the credentials cannot be sent again (None: they can): there must be a room,
        still the office's, whose first mail was tried."""
        if MailKind.released in self.outcomes:
            return "the request was cancelled: its room is no longer the office's"
        if self.booking is None:
            return "no room is assigned to this request (yet): there are no credentials to send"
        if MailKind.assigned not in self.outcomes:
            return "the credentials are being sent right now; look again in a moment"
        return None
