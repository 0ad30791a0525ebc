"""The meeting as an iCalendar file (RFC 5545, icalendar), in Asia/Bangkok time.

The event carries the join URL and the Meeting ID and passcode in its description,
since a clerk adds it to the calendar precisely to join from there; it is served
only to those who may see the passcode anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from icalendar import Calendar, Event

from vcs_intake.schemas import RequestView
from vcs_shared.thaitime import BANGKOK

PRODUCT_ID = "-//DOPA VCS//Meeting rooms for district offices//TH"


def meeting_calendar(view: RequestView, *, office_name: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{view.request_id}@vcs.dopa.go.th")
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", view.starts_at.astimezone(BANGKOK))
    event.add("dtend", view.ends_at.astimezone(BANGKOK))
    event.add("summary", view.title)
    lines: list[Any] = [f"DOPA VCS · {office_name}"]
    if view.assignment is not None:
        event.add("location", view.assignment.join_url)
        event.add("url", view.assignment.join_url)
        lines += [
            f"Meeting ID: {view.assignment.meeting_id}",
            f"Passcode: {view.assignment.passcode or '-'}",
            f"Join: {view.assignment.join_url}",
        ]
    event.add("description", "\n".join(lines))
    calendar.add_component(event)
    calendar.add_missing_timezones()
    ical: bytes = calendar.to_ical()
    return ical
