"""The meeting as an iCalendar file for the clerk's download (``PUBLISH``), in Asia/Bangkok time.

Built by :mod:`vcs_shared.invites`, like the invitations the notifier mails, so the
download and the mails share one UID and a calendar keeps one entry. It carries the
join URL and the Meeting ID and passcode in its description, since a clerk adds it
to the calendar precisely to join from there; it is served only to those who may see
the passcode anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vcs_intake.schemas import RequestView
from vcs_shared.invites import MeetingEntry
from vcs_shared.invites import meeting_calendar as calendar_file


def meeting_calendar(view: RequestView, *, office_name: str) -> bytes:
    assignment = view.assignment
    entry = MeetingEntry(
        request_id=view.request_id,
        title=view.title,
        starts_at=view.starts_at,
        ends_at=view.ends_at,
        office_name=office_name,
        meeting_id=assignment.meeting_id if assignment else None,
        passcode=assignment.passcode if assignment else None,
        join_url=assignment.join_url if assignment else None,
    )
    return calendar_file(entry, stamp=datetime.now(UTC))
