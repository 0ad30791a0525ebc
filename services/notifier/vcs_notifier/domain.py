"""A delivery as the notifier keeps it: who to write to, and which messages went out; no I/O.

The contact and the meeting asked for come from ``request.submitted`` (event-carried
state), the room from ``room.assigned``. Each kind of message (:class:`MailKind`) is
sent at most once per request by its event: a recorded outcome is final, whatever
copies of its event arrive later (only an operator's redelivery sends the credentials
again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal

from vcs_shared.events import (
    Contact,
    RejectionReason,
    RequestRejected,
    RequestSubmitted,
    RoomAssigned,
    RoomReassigned,
    Subject,
)


class MailKind(StrEnum):
    assigned = "assigned"
    """The credentials, after room.assigned (and again on an operator's redelivery)."""
    rejected = "rejected"
    """Why no room could be given and what to try instead, after request.rejected."""
    cancelled = "cancelled"
    """The meeting is withdrawn and its room no longer the office's, after request.cancelled."""
    reminder = "reminder"
    """The meeting is coming, with its credentials again (scheduled, not sent by an event)."""


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """How one kind of message went: sent, or failed for good with ``error``."""

    kind: MailKind
    state: Literal["delivered", "failed"]
    at: datetime
    channel: Literal["email"] | None = None
    error: str | None = None

    @classmethod
    def of(cls, kind: MailKind, error: str | None, *, at: datetime) -> MailOutcome:
        """The outcome of a message that ended with ``error`` (None: delivered)."""
        return cls(kind, "delivered" if error is None else "failed", at, "email", error)


@dataclass(frozen=True, slots=True)
class Booking:
    """The room reserved for a request, as the notifier keeps it to send the credentials again
    (a redelivery, a reminder): the passcode stays sealed until a message is written.
    ``version`` counts the rooms the request had (a calendar entry's ``SEQUENCE``)."""

    meeting_id: str
    capacity: int
    starts_at: datetime
    ends_at: datetime
    sealed_credentials: str
    version: int = 0

    @classmethod
    def moved(cls, event: RoomReassigned) -> Booking:
        return cls(
            meeting_id=event.new_meeting_id,
            capacity=event.capacity,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            sealed_credentials=event.sealed_credentials,
            version=event.reassignment,
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
class Rejection:
    """Why the allocator could not serve the request, in Thai and English."""

    reason: RejectionReason
    message_th: str
    message_en: str

    @classmethod
    def of(cls, event: RequestRejected) -> Rejection:
        return cls(event.reason, event.message_th, event.message_en)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the notifier knows of one request: its contact, the meeting asked for, the room
    once there is one, and the messages recorded or under way (``claimed``)."""

    request_id: str
    contact: Contact
    title: str
    province_code: str
    district_code: str
    created_at: datetime
    starts_at: datetime
    ends_at: datetime
    participants: int = 0
    needs_support: bool = False
    outcomes: Mapping[MailKind, MailOutcome] = field(default_factory=dict)
    claimed: frozenset[MailKind] = frozenset()
    booking: Booking | None = None
    redeliveries: int = 0
    reassignments: int = 0
    """The latest move of the booking (``room.reassigned``) whose credentials were sent."""

    @classmethod
    def of(cls, event: RequestSubmitted, contact: Contact, *, at: datetime) -> Delivery:
        """The delivery of a request; ``contact`` is the event's, unsealed."""
        return cls(
            **event.subject(),
            contact=contact,
            title=event.title,
            created_at=at,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            participants=event.participants,
            needs_support=event.needs_support,
        )

    def subject(self) -> Subject:
        """The request and office the events about this delivery name."""
        return Subject(
            request_id=self.request_id,
            province_code=self.province_code,
            district_code=self.district_code,
        )

    def recorded(self, kind: MailKind) -> bool:
        """Whether that message's outcome is recorded: then its event never sends it again."""
        return kind in self.outcomes

    @property
    def cancelled(self) -> bool:
        """Whether the request was withdrawn (its cancellation sent or being sent)."""
        return MailKind.cancelled in self.outcomes or MailKind.cancelled in self.claimed

    def with_booking(self, booking: Booking) -> Delivery:
        return replace(self, booking=booking)

    def redelivery_refusal(self) -> str | None:
        """Why the credentials cannot be sent again (None: they can): there must be a room,
        still the office's, whose first message was tried."""
        if self.cancelled:
            return "the request was cancelled: its room is no longer the office's"
        if self.booking is None:
            return "no room is assigned to this request (yet): there are no credentials to send"
        if MailKind.assigned not in self.outcomes:
            return "the credentials are being sent right now; look again in a moment"
        return None
