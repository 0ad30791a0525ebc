"""The ``.ics`` of a meeting carries exactly one ``VTIMEZONE``, Asia/Bangkok's as icalendar
derives it, although the component is derived once per process and shared by every file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar, Timezone

from vcs_shared.invites import MeetingEntry, meeting_calendar

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
