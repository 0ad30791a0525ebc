"""The mails an office gets (issue 15, "E-mail"), read back from the real SMTP sink with the
standard library's parser and icalendar: a Date, the office's Thai name and the room's size, a
word on the support staff asked for, the time in English too, a Subject that shortens a long
title, an HTML part beside the text, and the meeting as an ``.ics`` invitation
(``METHOD:REQUEST``, Asia/Bangkok, the join URL as ``LOCATION``, one ``UID`` per request);
a rejection says why and what to try instead in Thai and English; a cancellation withdraws the
same calendar entry (``METHOD:CANCEL``, same ``UID``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import httpx
import pytest
from icalendar import Calendar

from tests.support.requests import request_body, tomorrow_at, wait_status
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_shared.thaitime import BANGKOK
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.e2e

LONG_TITLE = ("ประชุมติดตาม <b>สถานการณ์</b> & แผนงาน " * 10)[:300].strip()


def text_of(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content: str = part.get_content()
    return content


def calendars(mail: EmailMessage) -> list[tuple[str, Calendar]]:
    found = []
    for part in mail.iter_attachments():
        if part.get_content_type() == "text/calendar":
            found.append((part.get_filename() or "", Calendar.from_ical(part.get_content())))
    return found


async def test_the_credentials_mail_says_everything_and_invites_to_the_calendar(
    start_services: StartServices, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    await start_services("intake", "allocator", "notifier")
    starts_at = tomorrow_at(9, days=3)
    body = request_body("4701", starts_at=starts_at, hours=2, title=LONG_TITLE, needs_support=True)
    request_id = (await http.post("/v1/requests", json=body)).json()["request_id"]
    delivered = await wait_status(http, request_id, "delivered")
    room = delivered["assignment"]

    [mail] = smtp_sink.messages
    date = parsedate_to_datetime(str(mail["Date"]))
    assert abs(date - datetime.now(BANGKOK)) < timedelta(minutes=5)
    subject = str(mail["Subject"])
    assert room["meeting_id"] in subject
    assert "…" in subject
    assert len(subject) < 130
    assert mail.is_multipart()

    text = text_of(mail, "plain")
    assert "ที่ทำการปกครองอำเภอเมืองสกลนคร จังหวัดสกลนคร" in text
    assert f"รองรับผู้เข้าร่วมได้ {room['capacity']} คน" in text
    assert "ท่านขอเจ้าหน้าที่ช่วยดูแลการประชุม" in text
    assert "042-711360" in text
    assert LONG_TITLE in text  # whole in the body
    assert room["passcode"] in text
    english = text.split("--\n", 1)[1]
    day = starts_at.strftime("%A %-d %B %Y")
    assert f"When: {day}, 09:00\u201311:00 (Bangkok time, UTC+7)" in english
    assert "you asked for staff" in english
    assert "Mueang Sakon Nakhon (4701)" in english

    html = text_of(mail, "html")
    assert "&lt;b&gt;สถานการณ์&lt;/b&gt; &amp; แผนงาน" in html  # the title as text, not markup
    assert "<b>สถานการณ์</b>" not in html
    assert f'href="{room["join_url"]}"' in html

    [(filename, calendar)] = calendars(mail)
    assert filename == "meeting.ics"
    assert str(calendar["METHOD"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{request_id}@vcs.dopa.go.th"
    assert event.decoded("DTSTART") == starts_at
    assert event.decoded("DTEND") == starts_at + timedelta(hours=2)
    assert str(event.decoded("DTSTART").tzinfo) == "Asia/Bangkok"
    assert str(event["LOCATION"]) == room["join_url"]
    assert str(event["ATTENDEE"]) == "mailto:somchai@example.go.th"
    assert str(event["ORGANIZER"]) == "mailto:no-reply@vcs.dopa.go.th"
    assert room["passcode"] in str(event["DESCRIPTION"])


async def test_a_rejection_mail_says_why_and_what_to_try_instead_in_thai_and_english(
    start_services: StartServices, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    await start_services("intake", "allocator", "notifier")
    request_id = (await http.post("/v1/requests", json=request_body(participants=5000))).json()[
        "request_id"
    ]
    rejected = (await wait_status(http, request_id, "rejected"))["rejection"]

    [mail] = await eventually(lambda: _mails(smtp_sink), what="the rejection mail")
    assert "จัดห้องประชุมไม่ได้" in str(mail["Subject"])
    assert str(mail["Message-ID"]) == f"<rejected.{request_id}@vcs.dopa.go.th>"
    text = text_of(mail, "plain")
    assert f"เหตุผล: {rejected['message_th']}" in text
    assert "สิ่งที่ทำได้: ลดจำนวนผู้เข้าร่วม" in text
    assert f"Why: {rejected['message_en']}" in text
    assert "What to try instead: Ask for at most 1,000 participants" in text
    assert rejected["message_th"] in text_of(mail, "html")
    assert calendars(mail) == []


async def test_a_cancellation_withdraws_the_same_calendar_entry(
    start_services: StartServices, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    await start_services("intake", "allocator", "notifier")
    request_id = (await http.post("/v1/requests", json=request_body("4702"))).json()["request_id"]
    await wait_status(http, request_id, "delivered")
    await http.post(f"/v1/requests/{request_id}/cancel")

    assigned, cancelled = await eventually(
        lambda: _mails(smtp_sink, 2), what="the credentials and the cancellation"
    )
    assert str(assigned["Message-ID"]).startswith("<assigned.")
    assert str(cancelled["Message-ID"]) == f"<cancelled.{request_id}@vcs.dopa.go.th>"
    assert "ยกเลิกการประชุม" in str(cancelled["Subject"])
    assert "ถูกยกเลิกแล้ว" in text_of(cancelled, "plain")
    assert "is cancelled" in text_of(cancelled, "plain")
    [(_, request)] = calendars(assigned)
    [(_, cancel)] = calendars(cancelled)
    [first], [withdrawn] = request.walk("VEVENT"), cancel.walk("VEVENT")
    assert str(cancel["METHOD"]) == "CANCEL"
    assert str(withdrawn["UID"]) == str(first["UID"]) == f"{request_id}@vcs.dopa.go.th"
    assert int(withdrawn.decoded("SEQUENCE")) > int(first.decoded("SEQUENCE"))
    assert str(withdrawn["STATUS"]) == "CANCELLED"
    assert withdrawn.decoded("DTSTART") == first.decoded("DTSTART")


async def _mails(sink: SmtpSink, count: int = 1) -> list[EmailMessage] | None:
    return list(sink.messages) if len(sink.messages) >= count else None
