"""The mail of a re-sent passcode: the allocator's Zoom fallback moves a booking to the same
room with the passcode the room really has, and the office is told the passcode changed, not
that its room changed from itself to itself."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtplib.email import flatten_message

from vcs_notifier.channels import Notice
from vcs_notifier.domain import Booking, Delivery, MailKind
from vcs_notifier.messages import write_mail
from vcs_shared.credentials import MeetingCredentials
from vcs_shared.events import Contact

pytestmark = pytest.mark.unit

STARTS = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def assigned(
    request_id: str, credentials: MeetingCredentials, moved_from: str | None = None
) -> Notice:
    """The credentials notice of a one-hour booking of room 3475946456."""
    booking = Booking("3475946456", 300, STARTS, STARTS + timedelta(hours=1), "sealed")
    delivery = Delivery(
        request_id=request_id,
        contact=Contact(name="สมชาย ใจดี", email="somchai@example.go.th", phone="042-711360"),
        title="ประชุม",
        province_code="47",
        district_code="4701",
        created_at=STARTS - timedelta(days=1),
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=1),
        booking=booking,
    )
    return Notice(MailKind.assigned, delivery, credentials, moved_from=moved_from, at=STARTS)


def mail_of(moved_from: str) -> tuple[str, str]:
    credentials = MeetingCredentials(
        passcode="48213907", join_url="https://dopa-vcs.zoom.us/j/3475946456"
    )
    notice = assigned("r-1", credentials, moved_from)
    written = write_mail(notice, "DOPA VCS <vcs@example.go.th>")
    mail = email.message_from_bytes(written.as_bytes(), policy=policy.default)  # as received
    assert isinstance(mail, EmailMessage)
    body = mail.get_body(("plain",))
    assert body is not None
    return str(mail["Subject"]), body.get_content()


def test_a_passcode_re_sent_for_the_same_room_says_the_passcode_changed() -> None:
    subject, text = mail_of(moved_from="3475946456")

    assert subject.startswith("DOPA VCS: รหัสผ่านใหม่ของห้องประชุม 3475946456")
    assert "The passcode of your room 3475946456 has changed" in text
    assert "48213907" in text
    assert "changed from" not in text


def test_a_move_to_another_room_still_says_the_room_changed() -> None:
    subject, text = mail_of(moved_from="632315200")

    assert subject.startswith("DOPA VCS: เปลี่ยนห้องประชุมเป็น 3475946456")
    assert "Your room was changed from 632315200 to 3475946456" in text
    assert "passcode of your room" not in text


def test_the_mail_as_sent_parses_back_to_its_parts_each_boundary_its_own() -> None:
    """The boundaries are drawn when the mail is written, not by the generator: the flattened
    mail (as aiosmtplib sends it) still holds text, HTML and the invitation, each whole."""
    credentials = MeetingCredentials(passcode="1", join_url="https://dopa-vcs.zoom.us/j/1")
    notice = assigned("r-2", credentials)
    written = write_mail(notice, "DOPA VCS <vcs@example.go.th>")

    mail = email.message_from_bytes(flatten_message(written), policy=policy.default)

    assert [part.get_content_type() for part in mail.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    assert not any(part.defects for part in mail.walk())
    boundaries = [part.get_boundary() for part in mail.walk() if part.is_multipart()]
    assert len(set(boundaries)) == 2
    texts = [part for part in mail.walk() if part.get_content_maintype() == "text"]
    assert all(part["Content-Transfer-Encoding"] == "base64" for part in texts)
    plain, html, calendar = (part.get_content() for part in texts)
    assert "https://dopa-vcs.zoom.us/j/1" in plain
    assert "https://dopa-vcs.zoom.us/j/1" in html
    assert "METHOD:REQUEST" in calendar
