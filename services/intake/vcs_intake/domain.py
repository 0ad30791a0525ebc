"""A request as the intake keeps it; no I/O here.

The status only ever moves along :data:`vcs_shared.request_status.MOVES` (shared with the
desk's read model). The API (may this request be cancelled?), the projection (which status
may an event move on from?) and the store (the filters of its conditional writes) all read
it from there, so a replayed or reordered event can never move a request back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from vcs_shared.events import (
    Contact,
    RejectionReason,
    RequestCancelled,
    RequestSubmitted,
    RoomAssigned,
    RoomReassigned,
    Subject,
    Urgency,
)
from vcs_shared.request_status import Status


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One field of a submitted request that breaks a booking rule, and why (for a ``422``)."""

    field: str
    message: str
    kind: str = "value_error"


@dataclass(frozen=True, slots=True)
class BookingRules:
    """What the intake refuses at once, before anything is stored (settings).

    The allocator checks the window again (it is the owner of the rooms), but a request the
    intake can already tell will fail is refused with a ``422`` naming the field rather than
    accepted and rejected later; and a window far in the future (year 9999) never reaches the
    allocator's slot arithmetic at all.
    """

    horizon: timedelta = timedelta(days=365)
    max_duration: timedelta = timedelta(hours=12)
    past_grace: timedelta = timedelta(minutes=5)
    max_open_per_office: int = 20

    def window_problems(
        self, starts_at: datetime, ends_at: datetime, now: datetime
    ) -> list[FieldProblem]:
        """Every rule of the window the request breaks (the end after the start is the
        request model's own check)."""
        problems: list[FieldProblem] = []
        if starts_at < now - self.past_grace:
            problems.append(FieldProblem("starts_at", "must not be in the past", "window_past"))
        elif starts_at > now + self.horizon:
            problems.append(
                FieldProblem(
                    "starts_at",
                    f"must be within {self.horizon.days} days from now (the booking horizon)",
                    "window_beyond_horizon",
                )
            )
        if ends_at - starts_at > self.max_duration:
            hours = int(self.max_duration.total_seconds() // 3600)
            problems.append(
                FieldProblem(
                    "ends_at",
                    f"the meeting must not last longer than {hours} hours",
                    "window_too_long",
                )
            )
        return problems


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

    @classmethod
    def moved(cls, event: RoomReassigned) -> Assignment:
        return cls(
            meeting_id=event.new_meeting_id,
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

    def submitted(self, sealed_contact: str) -> RequestSubmitted:
        """The event announcing this request: the request as the office asked it, its contact
        sealed (``sealed_contact``: personal data never travels in clear on the topic)."""
        return RequestSubmitted(
            **self.subject(),
            title=self.title,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            participants=self.participants,
            urgency=self.urgency,
            needs_support=self.needs_support,
            sealed_contact=sealed_contact,
            submitted_at=self.submitted_at,
        )

    def cancelled(self, *, by: str, at: datetime) -> RequestCancelled:
        """The event announcing that ``by`` withdrew this request."""
        return RequestCancelled(**self.subject(), cancelled_by=by, cancelled_at=at)
