"""The public events of DOPA VCS: past-tense, frozen, defined here once.

Every event is about one request of one district office, so every routing key
is ``<event>.<province_code>.<district_code>`` and every CloudEvents ``subject``
is the request id. Consumers read tolerantly (unknown fields are ignored) so
that adding a field is not a breaking change; removing or renaming one is, and
needs a ``.v2`` type.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, field_validator

CLOUDEVENT_TYPE_PREFIX = "th.go.dopa.vcs."

DistrictCode = str
ProvinceCode = str


class Urgency(StrEnum):
    """The four urgency grades of Thai official correspondence."""

    normal = "normal"
    urgent = "urgent"
    very_urgent = "very_urgent"
    most_urgent = "most_urgent"


class RejectionReason(StrEnum):
    """Why a request could not be served; machine-readable, stable."""

    no_room_free = "no_room_free"
    capacity_exceeded = "capacity_exceeded"
    window_invalid = "window_invalid"
    unknown_office = "unknown_office"
    pool_empty = "pool_empty"


LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})
"""Unicode categories one line of text must not contain: control characters (``\\n``,
``\\r``, ``\\x0b``, ``\\x85``, tab, NUL…) and the line and paragraph separators
(``\\u2028``, ``\\u2029``)."""


def one_line(value: str) -> str:
    """``value`` stripped, if it is one line of text that is not blank; else ``ValueError``.

    For text that ends up in a mail header, a calendar entry or a log line (a title, a name).
    """
    if not value.strip():
        raise ValueError("must not be blank")
    if any(unicodedata.category(char) in LINE_BREAKING for char in value):
        raise ValueError("must be one line of text, without control characters or line breaks")
    return value.strip()


class Contact(BaseModel):
    """The person at the office who receives the credentials."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    phone: str = Field(min_length=3, max_length=40, pattern=r"^[0-9+()\- ]+$")

    @field_validator("name")
    @classmethod
    def _name_one_line(cls, value: str) -> str:
        return one_line(value)


class Subject(TypedDict):
    """What every event is about: one request of one office (its routing key and CloudEvents
    ``subject``). Built events start from it: ``RoomReleased(**event.subject(), ...)``."""

    request_id: str
    province_code: ProvinceCode
    district_code: DistrictCode


class Event(BaseModel):
    """Fields every event carries; subclasses name themselves with ``name``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: ClassVar[str]
    version: ClassVar[int] = 1

    request_id: str
    province_code: ProvinceCode = Field(pattern=r"^[0-9]{2}$")
    district_code: DistrictCode = Field(pattern=r"^[0-9]{4}$")

    @classmethod
    def cloudevent_type(cls) -> str:
        return f"{CLOUDEVENT_TYPE_PREFIX}{cls.name}.v{cls.version}"

    def routing_key(self) -> str:
        return f"{self.name}.{self.province_code}.{self.district_code}"

    def subject(self) -> Subject:
        """The request and office this event is about, for the events that follow from it."""
        return Subject(
            request_id=self.request_id,
            province_code=self.province_code,
            district_code=self.district_code,
        )


class RequestSubmitted(Event):
    """An office asked for a room for a time window (intake); its contact sealed.

    Version 2: the contact (a person's name, e-mail address and phone number) travels only
    inside ``sealed_contact``, sealed like the credentials (:mod:`vcs_shared.credentials`) and
    opened by the notifier. Version 1 carried it in clear and is no longer published.
    """

    name: ClassVar[str] = "request.submitted"
    version: ClassVar[int] = 2

    title: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: int = Field(gt=0)
    urgency: Urgency
    needs_support: bool
    sealed_contact: str = Field(
        description="The office's contact (name, e-mail, phone), sealed for the services"
    )
    submitted_at: AwareDatetime


class RequestCancelled(Event):
    """The office or an operator withdrew a request (intake)."""

    name: ClassVar[str] = "request.cancelled"

    cancelled_by: str
    cancelled_at: AwareDatetime


class RoomAssigned(Event):
    """A Meeting ID was reserved for the request's window (allocator).

    ``join_url`` here never embeds the passcode; the passcode and the full URL
    travel only inside ``sealed_credentials``.
    """

    name: ClassVar[str] = "room.assigned"

    meeting_id: str = Field(pattern=r"^[0-9]{9,11}$")
    capacity: int
    join_url: str
    pool: Literal["province", "overflow"]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    sealed_credentials: str


class RequestRejected(Event):
    """The request cannot be served, and why (allocator)."""

    name: ClassVar[str] = "request.rejected"

    reason: RejectionReason
    message_th: str
    message_en: str


class RoomReleased(Event):
    """A reservation was given up; the room is free for that window again (allocator)."""

    name: ClassVar[str] = "room.released"

    meeting_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class RoomReassigned(Event):
    """An operator moved a live booking to another room (allocator): the old room is free for
    the window again, the new one is held for it.

    As in ``room.assigned``, ``join_url`` never embeds the passcode; the new room's
    passcode and full URL travel only inside ``sealed_credentials``. ``reassignment``
    counts the moves of this booking (1 for the first): a consumer keeps the highest.
    """

    name: ClassVar[str] = "room.reassigned"

    old_meeting_id: str = Field(pattern=r"^[0-9]{9,11}$")
    new_meeting_id: str = Field(pattern=r"^[0-9]{9,11}$")
    capacity: int
    join_url: str
    pool: Literal["province", "overflow"]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    sealed_credentials: str
    reassignment: int = Field(ge=1)
    reassigned_by: str
    reassigned_at: AwareDatetime


class CredentialsDelivered(Event):
    """The office's contact was sent the credentials (notifier)."""

    name: ClassVar[str] = "credentials.delivered"

    channel: Literal["email"]
    delivered_at: datetime


class CredentialsFailed(Event):
    """The credentials could not be delivered after retries (notifier)."""

    name: ClassVar[str] = "credentials.failed"

    channel: Literal["email", "webhook", "line"]
    """The channel that failed for good (``webhook``: the office's receiver, after retrying
    for ``VCS_WEBHOOK_RETRY_HOURS``)."""
    error: str


class ReminderSent(Event):
    """The office was reminded of its meeting, ``lead`` before it starts (notifier): by mail,
    and by LINE to an office with a group. An office's webhook receives this event as its
    reminder. Once per request and lead time of ``VCS_REMINDERS``; never for a cancelled
    request. No credentials travel here: the office's receiver had them in
    ``room.assigned`` (or ``room.reassigned``)."""

    name: ClassVar[str] = "reminder.sent"

    lead: str = Field(
        pattern=r"^([0-9]+[dhms])+$",
        description="How long before the start, as configured in VCS_REMINDERS (1d, 30m)",
        examples=["1d", "30m", "1h30m"],
    )
    meeting_id: str = Field(pattern=r"^[0-9]{9,11}$")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    sent_at: AwareDatetime


class SupportOrigin(StrEnum):
    """How an office asked for support staff."""

    request = "request"
    """With a meeting request (``needs_support``); the ticket's id is the request's."""
    office = "office"
    """On its own, without a meeting (``POST /v1/support-requests``)."""


class SupportResolution(StrEnum):
    """How a support ticket ended."""

    helped = "helped"
    """Staff helped the office; an operator marked it done."""
    request_cancelled = "request_cancelled"
    """The meeting it was asked for was cancelled first."""


class SupportEvent(Event):
    """An event of a support ticket (desk). ``request_id`` (the CloudEvents ``subject``) is
    the ticket's id: the meeting request's id when the ticket came with a request.

    No contact details, names or notes travel here (integrations may bind ``#``): they
    stay in the desk's ticket, which operators and the office read over HTTP.
    """

    ticket_id: str


class SupportRequested(SupportEvent):
    """An office asked for staff to help it (desk)."""

    name: ClassVar[str] = "support.requested"

    origin: SupportOrigin
    topic: str = Field(description="What the office needs help with (the meeting's title)")
    requested_at: AwareDatetime


class SupportClaimed(SupportEvent):
    """An operator of the region took the ticket: staff will help at ``visit_at`` (desk)."""

    name: ClassVar[str] = "support.claimed"

    visit_at: AwareDatetime
    claimed_at: AwareDatetime


class SupportDone(SupportEvent):
    """The ticket is closed (desk): staff helped, or the meeting was cancelled first."""

    name: ClassVar[str] = "support.done"

    resolution: SupportResolution
    done_at: AwareDatetime


EVENT_TYPES: dict[str, type[Event]] = {
    cls.cloudevent_type(): cls
    for cls in (
        RequestSubmitted,
        RequestCancelled,
        RoomAssigned,
        RequestRejected,
        RoomReleased,
        RoomReassigned,
        CredentialsDelivered,
        CredentialsFailed,
        ReminderSent,
        SupportRequested,
        SupportClaimed,
        SupportDone,
    )
}
