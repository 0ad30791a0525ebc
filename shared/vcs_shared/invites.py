"""A meeting as an iCalendar entry (RFC 5545, iTIP RFC 5546), in Asia/Bangkok time.

One definition for every copy of a meeting an office gets, the ``.ics`` the clerk
downloads from the request page (``PUBLISH``) and the ones the notifier attaches to
its mails (``REQUEST`` with the credentials, ``CANCEL`` when it is withdrawn): they
share one ``UID`` per request (:func:`meeting_uid`), so a calendar updates or removes
the entry it already has instead of adding a second one. ``SEQUENCE`` orders the
versions of an entry (a moved booking is a new version; its cancellation the next).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Literal

from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from vcs_shared.thaitime import BANGKOK

PRODUCT_ID = "-//DOPA VCS//Meeting rooms for district offices//TH"
UID_DOMAIN = "vcs.dopa.go.th"

Method = Literal["PUBLISH", "REQUEST", "CANCEL"]


def meeting_uid(request_id: str) -> str:
    """The one UID of a request's meeting in every calendar file."""
    return f"{request_id}@{UID_DOMAIN}"


@dataclass(frozen=True, slots=True)
class MeetingEntry:
    """What a calendar entry shows: the meeting, and its room once there is one."""

    request_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    office_name: str
    meeting_id: str | None = None
    passcode: str | None = None
    join_url: str | None = None


@dataclass(frozen=True, slots=True)
class Mailbox:
    name: str
    address: str


def meeting_calendar(
    entry: MeetingEntry,
    *,
    stamp: datetime,
    method: Method = "PUBLISH",
    sequence: int = 0,
    organizer: Mailbox | None = None,
    attendee: Mailbox | None = None,
) -> bytes:
    """The entry as an ``.ics`` file: :func:`meeting_event` in the calendar of ``method``."""
    head, tail = _calendar_around(method)
    event = meeting_event(
        entry,
        stamp=stamp,
        method=method,
        sequence=sequence,
        organizer=organizer,
        attendee=attendee,
    )
    event_ical: bytes = event.to_ical()
    return head + event_ical + tail


def meeting_event(
    entry: MeetingEntry,
    *,
    stamp: datetime,
    method: Method,
    sequence: int,
    organizer: Mailbox | None,
    attendee: Mailbox | None,
) -> Event:
    """The entry's ``VEVENT``: the join URL as ``LOCATION`` (and ``URL``), the Meeting ID and
    passcode in the description; ``CANCEL`` marks it ``STATUS:CANCELLED``."""
    event = Event()
    event.add("uid", meeting_uid(entry.request_id))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", entry.starts_at.astimezone(BANGKOK))
    event.add("dtend", entry.ends_at.astimezone(BANGKOK))
    event.add("summary", entry.title)
    lines = [f"DOPA VCS · {entry.office_name}"]
    if entry.join_url:
        event.add("location", entry.join_url)
        event.add("url", entry.join_url)
    if entry.meeting_id:
        lines.append(f"Meeting ID: {entry.meeting_id}")
        lines.append(f"Passcode: {entry.passcode or '-'}")
    if entry.join_url:
        lines.append(f"Join: {entry.join_url}")
    event.add("description", "\n".join(lines))
    if method == "CANCEL":
        event.add("status", "CANCELLED")
    elif method == "REQUEST":
        event.add("status", "CONFIRMED")
    if organizer is not None:
        event.add("organizer", _address(organizer, role=None))
    if attendee is not None:
        event.add("attendee", _address(attendee, role="REQ-PARTICIPANT"))
    return event


END_CALENDAR = b"END:VCALENDAR\r\n"


@cache
def _calendar_around(method: Method) -> tuple[bytes, bytes]:
    """What a calendar of ``method`` holds before and after its one ``VEVENT``, as icalendar
    writes it: the header lines and Asia/Bangkok's ``VTIMEZONE``, then ``END:VCALENDAR``.

    Written once per method and process, since it is the same in every file: writing it
    with each calendar was two fifths of the CPU of an invitation (0.42 -> 0.24 ms per
    notifier mail), and deriving the ``VTIMEZONE`` from the zone's transitions on every
    ``add_missing_timezones`` was once 10 ms. The entry's times are in Bangkok time and
    icalendar writes DTSTAMP in UTC, so no other zone can be missing; the unit tests compare
    the bytes with calendars written whole."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(Timezone.from_tzid(BANGKOK.key))
    whole: bytes = calendar.to_ical()
    return whole.removesuffix(END_CALENDAR), END_CALENDAR


def _address(mailbox: Mailbox, *, role: str | None) -> vCalAddress:
    address = vCalAddress(f"mailto:{mailbox.address}")
    if mailbox.name:
        address.params["cn"] = vText(mailbox.name)
    if role is not None:
        address.params["role"] = vText(role)
        address.params["partstat"] = vText("NEEDS-ACTION")
    return address
