"""The ``.ics`` of a meeting carries exactly one ``VTIMEZONE``, Asia/Bangkok's as icalendar
derives it, although the component is derived and written once per process and shared by every
file; the file is byte for byte the calendar icalendar writes whole, though its ``VEVENT`` is
written line by line: the reference here is the event built with icalendar, for any text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from vcs_shared.invites import (
    PRODUCT_ID,
    Mailbox,
    MeetingEntry,
    Method,
    meeting_calendar,
    meeting_event,
    meeting_uid,
)
from vcs_shared.thaitime import BANGKOK

pytestmark = pytest.mark.unit

ENTRY = MeetingEntry(
    request_id="r-1",
    title="ประชุมประจำเดือน",
    starts_at=datetime(2026, 12, 3, 2, 0, tzinfo=UTC),
    ends_at=datetime(2026, 12, 3, 4, 0, tzinfo=UTC),
    office_name="อำเภอเมือง",
    meeting_id="85012345678",
)


def icalendar_event(
    entry: MeetingEntry,
    *,
    stamp: datetime,
    method: Method,
    sequence: int,
    organizer: Mailbox | None,
    attendee: Mailbox | None,
) -> Event:
    """The entry's ``VEVENT`` built with icalendar, as :func:`meeting_event` once built it."""
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
        event.add("organizer", icalendar_address(organizer, role=None))
    if attendee is not None:
        event.add("attendee", icalendar_address(attendee, role="REQ-PARTICIPANT"))
    return event


def icalendar_address(mailbox: Mailbox, *, role: str | None) -> vCalAddress:
    address = vCalAddress(f"mailto:{mailbox.address}")
    if mailbox.name:
        address.params["cn"] = vText(mailbox.name)
    if role is not None:
        address.params["role"] = vText(role)
        address.params["partstat"] = vText("NEEDS-ACTION")
    return address


def test_every_calendar_has_bangkoks_timezone_once_as_icalendar_derives_it() -> None:
    stamp = datetime(2026, 12, 1, tzinfo=UTC)
    files = [meeting_calendar(ENTRY, stamp=stamp, method=m) for m in ("REQUEST", "CANCEL")]
    derived = Timezone.from_tzid("Asia/Bangkok").to_ical()
    for ics in files:
        calendar = Calendar.from_ical(ics)
        assert [tz.to_ical() for tz in calendar.timezones] == [derived]
        assert calendar.get_missing_tzids() == set()
        (event,) = calendar.events
        assert event.decoded("DTSTART") == datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
        assert str(event.decoded("DTSTART").tzinfo) == "Asia/Bangkok"
        assert ics.index(b"BEGIN:VTIMEZONE") < ics.index(b"BEGIN:VEVENT")


@pytest.mark.parametrize("method", ["PUBLISH", "REQUEST", "CANCEL"])
@pytest.mark.parametrize("stamp_zone", [UTC, BANGKOK, ZoneInfo("Europe/Paris")])
def test_the_file_is_byte_for_byte_the_calendar_icalendar_writes_whole(
    method: Method, stamp_zone: tzinfo
) -> None:
    """The header lines and the ``VTIMEZONE`` are written once per method and process; the
    file is still exactly what icalendar writes for a calendar holding the event, with the
    zones it finds missing added (none), whatever the title escapes and the names quote."""
    entry = replace(
        ENTRY,
        title='ประชุม, "ติดตาม"; แผนงาน\\สถานการณ์ ' * 6,
        passcode="48213907",
        join_url="https://dopa-vcs.zoom.us/j/85012345678?pwd=a,b;c",
    )
    stamp = datetime(2026, 12, 1, 9, 30, tzinfo=UTC).astimezone(stamp_zone)
    organizer = Mailbox("DOPA VCS", "no-reply@vcs.dopa.go.th")
    attendee = Mailbox('สมชาย "ใจดี", ปลัด', "somchai@example.go.th")
    event = icalendar_event(
        entry, stamp=stamp, method=method, sequence=2, organizer=organizer, attendee=attendee
    )
    whole = Calendar()
    whole.add("prodid", PRODUCT_ID)
    whole.add("version", "2.0")
    whole.add("method", method)
    whole.add_component(Timezone.from_tzid("Asia/Bangkok"))
    whole.add_component(event)
    whole.add_missing_timezones()

    written = meeting_calendar(
        entry, stamp=stamp, method=method, sequence=2, organizer=organizer, attendee=attendee
    )
    assert written == whole.to_ical()


TEXT = st.text(max_size=120) | st.text(alphabet="ก ,;:\"'^\\\r\nNx\u2019", max_size=120)
LINE = TEXT.filter(lambda text: "\r" not in text and "\n" not in text)
"""What a URI may hold (icalendar refuses one with a line break, and so does the writer)."""
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, BANGKOK, ZoneInfo("Europe/Paris")]),
)


@settings(max_examples=400, deadline=None)
@given(
    title=TEXT,
    office=TEXT,
    meeting_id=st.none() | TEXT,
    passcode=st.none() | TEXT,
    join_url=st.none() | LINE,
    starts_at=MOMENTS,
    stamp=MOMENTS,
    method=st.sampled_from(["PUBLISH", "REQUEST", "CANCEL"]),
    sequence=st.integers(min_value=0, max_value=10_000),
    organizer=st.none() | st.builds(Mailbox, TEXT, LINE),
    attendee=st.none() | st.builds(Mailbox, TEXT, LINE),
)
def test_the_event_is_byte_for_byte_the_one_icalendar_writes_for_any_text(
    title: str,
    office: str,
    meeting_id: str | None,
    passcode: str | None,
    join_url: str | None,
    starts_at: datetime,
    stamp: datetime,
    method: Method,
    sequence: int,
    organizer: Mailbox | None,
    attendee: Mailbox | None,
) -> None:
    """Escapes, quoted names, Thai and long lines folded: whatever an office or a setting
    holds, the ``VEVENT`` written line by line is the one icalendar writes."""
    entry = MeetingEntry(
        request_id=title[:36],
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        office_name=office,
        meeting_id=meeting_id,
        passcode=passcode,
        join_url=join_url,
    )
    written = meeting_event(
        entry,
        stamp=stamp,
        method=method,
        sequence=sequence,
        organizer=organizer,
        attendee=attendee,
    )
    reference = icalendar_event(
        entry,
        stamp=stamp,
        method=method,
        sequence=sequence,
        organizer=organizer,
        attendee=attendee,
    )
    assert written == reference.to_ical()


@pytest.mark.parametrize(
    ("join_url", "attendee"),
    [
        ("https://dopa-vcs.zoom.us/j/1\r\nATTACH:x", "a@example.go.th"),
        ("https://dopa-vcs.zoom.us/j/1", "a@example.go.th\nATTENDEE:mailto:b@example.go.th"),
    ],
)
def test_a_url_or_address_with_a_line_break_is_refused_as_icalendar_refuses_it(
    join_url: str, attendee: str
) -> None:
    """No line break can add a line of its own to the file; the mail is not written."""
    entry = replace(ENTRY, join_url=join_url)
    with pytest.raises(ValueError, match="CR or LF"):
        icalendar_event(
            entry,
            stamp=ENTRY.starts_at,
            method="REQUEST",
            sequence=0,
            organizer=None,
            attendee=Mailbox("x", attendee),
        )
    with pytest.raises(ValueError, match="CR or LF"):
        meeting_event(
            entry,
            stamp=ENTRY.starts_at,
            method="REQUEST",
            sequence=0,
            organizer=None,
            attendee=Mailbox("x", attendee),
        )
