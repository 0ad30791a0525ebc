"""A request as the intake keeps it, and the one machine its status moves by; no I/O here.

The status only ever moves along :data:`MOVES`. The API (may this request be
cancelled?), the projection (which status may an event move on from?) and the
store (the filters of its conditional writes) all read it from here, so a
replayed or reordered event can never move a request back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from vcs_shared.events import (
    Contact,
    RejectionReason,
    RequestCancelled,
    RequestSubmitted,
    RoomAssigned,
    Subject,
    Urgency,
)


# The class name and the missing docstring are part of the HTTP contract: the OpenAPI
# document names this schema "Status".
class Status(StrEnum):
    submitted = "submitted"
    assigned = "assigned"
    delivered = "delivered"
    rejected = "rejected"
    cancelled = "cancelled"
    delivery_failed = "delivery_failed"

    def may_become(self, target: Status) -> bool:
        return target in MOVES[self]

    @property
    def refuses_cancel(self) -> bool:
        """A request that cannot move to cancelled and is not cancelled yet (cancelling twice is
        harmless): one that was rejected."""
        return self is not Status.cancelled and not self.may_become(Status.cancelled)

    @property
    def shows_room(self) -> bool:
        """Whether a room assigned to the request is shown (and still stored when its
        assignment arrives late): not once it was cancelled or rejected."""
        return self not in (Status.cancelled, Status.rejected)


MOVES: dict[Status, frozenset[Status]] = {
    # delivered may overtake assigned: the notifier's event can arrive before the allocator's
    Status.submitted: frozenset(
        {
            Status.assigned,
            Status.rejected,
            Status.delivered,
            Status.delivery_failed,
            Status.cancelled,
        }
    ),
    Status.assigned: frozenset({Status.delivered, Status.delivery_failed, Status.cancelled}),
    Status.delivered: frozenset({Status.cancelled}),
    # an operator's redelivery may still get the credentials through
    Status.delivery_failed: frozenset({Status.delivered, Status.cancelled}),
    Status.rejected: frozenset(),
    Status.cancelled: frozenset(),
}
"""Every allowed move of a request's status; the last two are final."""


def sources(target: Status) -> tuple[Status, ...]:
    """The statuses a request may move to ``target`` from."""
    return tuple(status for status in Status if status.may_become(target))


@dataclass(frozen=True, slots=True)
class Assignment:
    """The room the allocator reserved, as the intake keeps it (credentials still sealed)."""

    meeting_id: str
    capacity: int
    join_url: str
    pool: Literal["province", "overflow"]
    sealed_credentials: str

    @classmethod
    def of(cls, event: RoomAssigned) -> Assignment:
        return cls(
            meeting_id=event.meeting_id,
            capacity=event.capacity,
            join_url=event.join_url,
            pool=event.pool,
            sealed_credentials=event.sealed_credentials,
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectionReason
    message_th: str
    message_en: str


@dataclass(frozen=True, slots=True)
class RequestState:
    """One request of one office, as stored: what was asked, and how far it got."""

    request_id: str
    district_code: str
    province_code: str
    title: str
    starts_at: datetime
    ends_at: datetime
    participants: int
    urgency: Urgency
    needs_support: bool
    contact: Contact
    submitted_at: datetime
    idempotency_key: str
    fingerprint: str
    status: Status = Status.submitted
    assignment: Assignment | None = None
    rejection: Rejection | None = None
    delivery_error: str | None = None

    @property
    def visible_assignment(self) -> Assignment | None:
        return self.assignment if self.status.shows_room else None

    def subject(self) -> Subject:
        return Subject(
            request_id=self.request_id,
            province_code=self.province_code,
            district_code=self.district_code,
        )

    def submitted(self) -> RequestSubmitted:
        """The event announcing this request: the request as the office asked it (its fields
        are this record's, by name)."""
        return RequestSubmitted.model_validate(self, from_attributes=True)

    def cancelled(self, *, by: str, at: datetime) -> RequestCancelled:
        """The event announcing that ``by`` withdrew this request."""
        return RequestCancelled(**self.subject(), cancelled_by=by, cancelled_at=at)
