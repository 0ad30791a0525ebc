"""A meeting as an iCalendar entry (RFC 5545, iTIP RFC 5546), in Asia/Bangkok time.

One definition for every copy of a meeting an office gets, the ``.ics`` the clerk
downloads from the request page (``PUBLISH``) and the ones the notifier attaches to
its mails (``REQUEST`` with the credentials, ``CANCEL`` when it is withdrawn): they
share one ``UID`` per request (:func:`meeting_uid`), so a calendar updates or removes
the entry it already has instead of adding a second one. ``SEQUENCE`` orders the
versions of an entry (a moved booking is a new version; its cancellation the next).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Literal

from icalendar import Calendar, Timezone

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
    return head + event + tail


def meeting_event(
    entry: MeetingEntry,
    *,
    stamp: datetime,
    method: Method,
    sequence: int,
    organizer: Mailbox | None,
    attendee: Mailbox | None,
) -> bytes:
    """The entry's ``VEVENT``: the join URL as ``LOCATION`` (and ``URL``), the Meeting ID and
    passcode in the description; ``CANCEL`` marks it ``STATUS:CANCELLED``.

    Written line by line, byte for byte as icalendar writes the same ``Event`` (its property
    order, TEXT escaping, parameter quoting and line folding; the unit tests compare the two
    for any text): building the ``Event`` and having icalendar write it was a third of the CPU
    of a notifier's mail (0.25 ms of 0.76). ``stamp`` is an aware time (written in UTC)."""
    lines = [f"DOPA VCS · {entry.office_name}"]
    if entry.meeting_id:
        lines.append(f"Meeting ID: {entry.meeting_id}")
        lines.append(f"Passcode: {entry.passcode or '-'}")
    if entry.join_url:
        lines.append(f"Join: {entry.join_url}")
    description = "\n".join(lines)
    status = {"CANCEL": "CANCELLED", "REQUEST": "CONFIRMED"}.get(method)
    properties = [
        "BEGIN:VEVENT",
        f"SUMMARY:{_text(entry.title)}",
        f"DTSTART;TZID={BANGKOK.key}:{_local_time(entry.starts_at)}",
        f"DTEND;TZID={BANGKOK.key}:{_local_time(entry.ends_at)}",
        f"DTSTAMP:{stamp.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"UID:{_text(meeting_uid(entry.request_id))}",
        f"SEQUENCE:{sequence}",
    ]
    if attendee is not None:
        roles = ";PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT"
        address = _uri(f"mailto:{attendee.address}")
        properties.append(f"ATTENDEE{_common_name(attendee)}{roles}:{address}")
    properties.append(f"DESCRIPTION:{_text(description)}")
    if entry.join_url:
        properties.append(f"LOCATION:{_text(entry.join_url)}")
    if organizer is not None:
        properties.append(
            f"ORGANIZER{_common_name(organizer)}:{_uri(f'mailto:{organizer.address}')}"
        )
    if status is not None:
        properties.append(f"STATUS:{status}")
    if entry.join_url:
        properties.append(f"URL:{_uri(entry.join_url)}")
    properties.append("END:VEVENT")
    return "".join(_folded(line) + "\r\n" for line in properties).encode()


def _local_time(moment: datetime) -> str:
    return f"{moment.astimezone(BANGKOK):%Y%m%dT%H%M%S}"


def _uri(value: str) -> str:
    """A URI or address as it is; one that would break its line is refused
    (:class:`ValueError`, as icalendar refuses it)."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"a URI may not contain CR or LF characters: {value!r}")
    return value


def _text(value: str) -> str:
    """A TEXT value escaped (RFC 5545 3.3.11) as icalendar escapes it: every line break
    (CRLF, LF, a lone CR, a written ``\\N``) becomes ``\\n``."""
    return (
        value.replace("\\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


_PARAMETER_ESCAPES = {"^": "^^", "\r\n": "^n", "\r": "^n", "\n": "^n", '"': "^'"}
_PARAMETER_ESCAPED = re.compile(r'\^|\r\n|\r|\n|"')
_QUOTED_ALWAYS = re.compile("[ ']")
_QUOTED_WHEN = re.compile("[,;:\u2019]")


def _common_name(mailbox: Mailbox) -> str:
    """``;CN=<name>`` (none without a name): RFC 6868 escapes, quoted where icalendar quotes a
    ``CN`` (a space, an apostrophe, or a character that would end the parameter)."""
    if not mailbox.name:
        return ""
    name = _PARAMETER_ESCAPED.sub(lambda m: _PARAMETER_ESCAPES[m.group(0)], mailbox.name)
    if _QUOTED_ALWAYS.search(mailbox.name) or _QUOTED_WHEN.search(name):
        name = f'"{name}"'
    return f";CN={name}"


FOLD_OCTETS = 75


def _folded(line: str) -> str:
    """A content line folded as icalendar folds it: before the character that would make a
    line reach 75 octets, never leaving an escape\'s ``\\`` or ``^`` at a line\'s end."""
    if len(line.encode()) < FOLD_OCTETS:
        return line
    folded: list[str] = []
    current: list[str] = []
    octets = 0
    for char in line:
        size = len(char.encode())
        if current and octets + size >= FOLD_OCTETS:
            if len(current) > 1 and current[-1] in "\\^":
                carried = current.pop()
                folded.append("".join(current))
                current, octets = [carried], len(carried.encode())
            else:
                folded.append("".join(current))
                current, octets = [], 0
        current.append(char)
        octets += size
    folded.append("".join(current))
    return "\r\n ".join(folded)


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
