"""The ``.ics`` of a meeting carries exactly one ``VTIMEZONE``, Asia/Bangkok's as icalendar
derives it, although the component is derived and written once per process and shared by every
file; the file is byte for byte the calendar icalendar writes whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Timezone

from vcs_shared.invites import (
    PRODUCT_ID,
    Mailbox,
    MeetingEntry,
    Method,
    meeting_calendar,
    meeting_event,
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
    event = meeting_event(
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
