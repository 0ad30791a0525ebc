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
    """The entry as an ``.ics`` file: the join URL as ``LOCATION`` (and ``URL``), the Meeting
    ID and passcode in the description; ``CANCEL`` marks it ``STATUS:CANCELLED``."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(_bangkok_vtimezone())
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
    calendar.add_component(event)
    calendar.add_missing_timezones()  # none: Bangkok's is there; any other zone still gets one
    ical: bytes = calendar.to_ical()
    return ical


@cache
def _bangkok_vtimezone() -> Timezone:
    """Asia/Bangkok's ``VTIMEZONE``, derived once per process and shared by every calendar
    written: icalendar derives it from the zone's transitions on every
    ``add_missing_timezones`` (10 ms, a fifth of the notifier's CPU in the benchmark's
    burst), and even parsing a cached copy back was 5% of it. Calendars only read it."""
    return Timezone.from_tzid(BANGKOK.key)


def _address(mailbox: Mailbox, *, role: str | None) -> vCalAddress:
    address = vCalAddress(f"mailto:{mailbox.address}")
    if mailbox.name:
        address.params["cn"] = vText(mailbox.name)
    if role is not None:
        address.params["role"] = vText(role)
        address.params["partstat"] = vText("NEEDS-ACTION")
    return address
