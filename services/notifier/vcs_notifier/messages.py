"""The mails an office receives: Thai first, English below, as text and as HTML, with the
meeting as a calendar invitation.

Each kind of :class:`~vcs_notifier.channels.Notice` has a template pair in
``templates/`` (``<kind>.txt`` and ``<kind>.html``, Jinja2; the HTML autoescaped, so
an office's title or name is shown as text, never as markup). The credentials mail
carries the meeting as an ``.ics`` attachment (``METHOD:REQUEST``), the cancellation
the same entry (same ``UID``) with ``METHOD:CANCEL``, so the meeting lands in the
office's calendar and leaves it again. Message-IDs are derived from the request and
the kind of mail, so a mail sent twice after a crash is recognisably the same mail.

The parts are ``email.mime`` (``compat32``) objects: the same MIME tree, transfer
encodings and headers as ``EmailMessage.set_content`` writes, for about a fifth of its
CPU (see :mod:`vcs_notifier.headers`).
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from datetime import datetime
from email.encoders import encode_base64
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pythainlp.util import thai_strftime

from vcs_notifier.channels import Notice
from vcs_notifier.domain import MailKind
from vcs_notifier.headers import mailbox, sender_mailbox, set_headers, shortened
from vcs_notifier.reminders import label, lead_en, lead_th
from vcs_shared.events import RejectionReason
from vcs_shared.invites import Mailbox, MeetingEntry, Method, meeting_calendar
from vcs_shared.offices import find_office
from vcs_shared.thaitime import BANGKOK

TEMPLATES = Environment(
    loader=PackageLoader("vcs_notifier", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
CALENDAR_FILE = "meeting.ics"
EN_DASH = "\u2013"

MOVED_SUBJECT = "DOPA VCS: เปลี่ยนห้องประชุมเป็น {meeting_id} · {when} · {title}"
NEW_PASSCODE_SUBJECT = "DOPA VCS: รหัสผ่านใหม่ของห้องประชุม {meeting_id} · {when} · {title}"
"""A move to the same room: the allocator re-sends the passcode the room really has (Zoom
could not take the booking's own one, see the allocator's per-booking passcodes)."""
SUBJECTS = {
    MailKind.assigned: "DOPA VCS: ห้องประชุม {meeting_id} · {when} · {title}",
    MailKind.rejected: "DOPA VCS: จัดห้องประชุมไม่ได้ · {when} · {title}",
    MailKind.cancelled: "DOPA VCS: ยกเลิกการประชุม · {when} · {title}",
    MailKind.reminder: "DOPA VCS: เตือนการประชุม {when} · ห้องประชุม {meeting_id} · {title}",
}

ADVICE: dict[RejectionReason, tuple[str, str]] = {
    RejectionReason.no_room_free: (
        "ลองขอช่วงเวลาอื่น (หน้าขอห้องประชุมแสดงห้องที่ว่าง) หรือติดต่อศูนย์สื่อสารภาค",
        "Ask for another time (the request form shows the free rooms), or call the regional "
        "communication centre.",
    ),
    RejectionReason.capacity_exceeded: (
        "ลดจำนวนผู้เข้าร่วมให้ไม่เกิน 1,000 คน หรือแบ่งเป็นหลายการประชุม",
        "Ask for at most 1,000 participants, or split the meeting in several.",
    ),
    RejectionReason.window_invalid: (
        "ตรวจสอบวันและเวลาเริ่มต้น-สิ้นสุด แล้วส่งคำขอใหม่",
        "Check the start and end date and time, then ask again.",
    ),
    RejectionReason.unknown_office: (
        "ตรวจสอบรหัสอำเภอของสำนักงาน หรือติดต่อศูนย์สื่อสารภาค",
        "Check the office's district code, or call the regional communication centre.",
    ),
    RejectionReason.pool_empty: (
        "จังหวัดยังไม่มีห้องประชุมให้จัด กรุณาติดต่อศูนย์สื่อสารภาค",
        "Your province has no rooms to give yet: call the regional communication centre.",
    ),
}
SUPPORT = {
    True: (
        "เจ้าหน้าที่สนับสนุน: ท่านขอเจ้าหน้าที่ช่วยดูแลการประชุม "
        "ศูนย์สื่อสารภาคจะติดต่อกลับที่หมายเลข {phone} ก่อนการประชุม",
        "Support staff: you asked for staff to help with the meeting; the regional "
        "communication centre will call you at {phone} before it starts.",
    ),
    False: (
        "เจ้าหน้าที่สนับสนุน: ไม่ได้ขอ หากต้องการเจ้าหน้าที่ช่วยดูแลการประชุม โปรดติดต่อศูนย์สื่อสารภาค",
        "Support staff: not asked for. If you need staff to help with the meeting, call the "
        "regional communication centre.",
    ),
}
FALLBACK_ADVICE = (
    "ติดต่อศูนย์สื่อสารภาค หรือส่งคำขอใหม่",
    "Call the regional communication centre, or ask again.",
)


@dataclass(frozen=True, slots=True)
class Window:
    """A meeting's time as the mails say it."""

    thai: str
    english: str

    @classmethod
    def of(cls, starts_at: datetime, ends_at: datetime) -> Window:
        start, end = starts_at.astimezone(BANGKOK), ends_at.astimezone(BANGKOK)
        if start.date() == end.date():
            thai = (
                thai_strftime(start, "%A %-d %B %Y") + f" เวลา {start:%H:%M}{EN_DASH}{end:%H:%M} น."
            )
            english = f"{start:%A %-d %B %Y}, {start:%H:%M}{EN_DASH}{end:%H:%M}"
        else:
            thai = (
                thai_strftime(start, "%A %-d %B %Y เวลา %H:%M น.")
                + " ถึง "
                + thai_strftime(end, "%A %-d %B %Y เวลา %H:%M น.")
            )
            english = f"{start:%A %-d %B %Y, %H:%M} to {end:%A %-d %B %Y, %H:%M}"
        return cls(thai=thai, english=f"{english} (Bangkok time, UTC+7)")


def short_thai_date(moment: datetime) -> str:
    """``3 ธ.ค. 2569 09:00`` for a Subject."""
    return thai_strftime(moment.astimezone(BANGKOK), "%-d %b %Y %H:%M")


def write_mail(notice: Notice, sender: str) -> Message:
    """The mail of a notice (the e-mail channel's ``compose``): text and HTML alternatives,
    and the calendar invitation where the meeting has one."""
    delivery = notice.delivery
    context = _context(notice)
    moved = notice.kind is MailKind.assigned and notice.moved_from is not None
    template = SUBJECTS[notice.kind]
    if moved:
        template = NEW_PASSCODE_SUBJECT if context["new_passcode"] else MOVED_SUBJECT
    subject = template.format(
        meeting_id=context["meeting_id"],
        when=short_thai_date(context["starts_at"]),
        title=shortened(delivery.title),
    )
    recipient = mailbox(delivery.contact.name, str(delivery.contact.email))
    text = TEMPLATES.get_template(f"{notice.kind}.txt").render(context)
    html = TEMPLATES.get_template(f"{notice.kind}.html").render(context)
    alternatives = [MIMEText(text, "plain", "utf-8"), MIMEText(html, "html", "utf-8")]
    message: Message = MIMEMultipart("alternative", _boundary(), alternatives)
    invitation = _invitation(notice, sender)
    if invitation is not None:
        method, ical = invitation
        message = MIMEMultipart("mixed", _boundary(), [message, _calendar_part(method, ical)])
    set_headers(
        message,
        sender=sender,
        recipient=recipient,
        subject=subject,
        message_id=_message_id(notice),
        request_id=delivery.request_id,
        date=notice.at,
    )
    return message


def _boundary() -> str:
    """A multipart boundary as the standard library draws one (``=`` * 15, a random number,
    ``==``), chosen here rather than by the generator: the generator draws one and then
    compiles a regular expression to search the parts for it (a new pattern, never cached,
    for every multipart: a fifth of the CPU of writing a mail). Every part of these mails is
    base64 under a few headers of ours, so no line of a part can begin with ``--``, let
    alone be the boundary."""
    return f"{'=' * 15}{secrets.randbelow(sys.maxsize):019d}=="


def _calendar_part(method: Method, ical: bytes) -> MIMEBase:
    """The invitation as an attachment calendar programs open: ``text/calendar`` with its
    ``method``, base64 (an ``.ics`` may hold long folded lines)."""
    part = MIMEBase("text", "calendar", method=method)
    part.set_payload(ical)
    encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=CALENDAR_FILE)
    return part


def _message_id(notice: Notice) -> str:
    """One per request and kind; a move's credentials one per room, so the office's mailbox
    keeps the first room's mail and the new one's apart."""
    request_id = notice.delivery.request_id
    booking = notice.delivery.booking
    if notice.moved_from is not None and booking is not None:
        return f"<{notice.kind}.{request_id}.{booking.meeting_id}@vcs.dopa.go.th>"
    if notice.lead is not None:
        return f"<{notice.kind}-{label(notice.lead)}.{request_id}@vcs.dopa.go.th>"
    return f"<{notice.kind}.{request_id}@vcs.dopa.go.th>"


def _context(notice: Notice) -> dict[str, Any]:
    delivery, booking = notice.delivery, notice.delivery.booking
    office = find_office(delivery.district_code)
    starts_at = booking.starts_at if booking else delivery.starts_at
    ends_at = booking.ends_at if booking else delivery.ends_at
    rejection = notice.rejection
    advice = ADVICE.get(rejection.reason, FALLBACK_ADVICE) if rejection else FALLBACK_ADVICE
    support_th, support_en = SUPPORT[delivery.needs_support]
    phone = delivery.contact.phone
    return {
        "kind": notice.kind.value,
        "name": delivery.contact.name,
        "phone": delivery.contact.phone,
        "title": delivery.title,
        "request_id": delivery.request_id,
        "office_th": office.title_th if office else delivery.district_code,
        "office_en": office.title_en if office else delivery.district_code,
        "starts_at": starts_at,
        "window": Window.of(starts_at, ends_at),
        "participants": delivery.participants,
        "needs_support": delivery.needs_support,
        "meeting_id": booking.meeting_id if booking else "",
        "capacity": booking.capacity if booking else 0,
        "passcode": notice.credentials.passcode if notice.credentials else "",
        "join_url": notice.credentials.join_url if notice.credentials else "",
        "had_room": booking is not None,
        "moved_from": notice.moved_from,
        "new_passcode": booking is not None and notice.moved_from == booking.meeting_id,
        "lead_th": lead_th(notice.lead) if notice.lead else "",
        "lead_en": lead_en(notice.lead) if notice.lead else "",
        "rejection": rejection,
        "advice_th": advice[0],
        "advice_en": advice[1],
        "support_th": support_th.format(phone=phone),
        "support_en": support_en.format(phone=phone),
    }


def _invitation(notice: Notice, sender: str) -> tuple[Method, bytes] | None:
    """The calendar entry a mail carries: the credentials' ``REQUEST``, the cancellation's
    ``CANCEL`` (of the entry the office may have), none for a rejection."""
    delivery, booking = notice.delivery, notice.delivery.booking
    if notice.kind in (MailKind.rejected, MailKind.reminder) or booking is None:
        return None
    method: Method = "CANCEL" if notice.kind is MailKind.cancelled else "REQUEST"
    office = find_office(delivery.district_code)
    credentials = notice.credentials
    entry = MeetingEntry(
        request_id=delivery.request_id,
        title=delivery.title,
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        office_name=office.title_th if office else delivery.district_code,
        meeting_id=booking.meeting_id,
        passcode=credentials.passcode if credentials else None,
        join_url=credentials.join_url if credentials else None,
    )
    organizer = sender_mailbox(sender)
    ical = meeting_calendar(
        entry,
        stamp=notice.at,
        method=method,
        sequence=booking.version + (1 if method == "CANCEL" else 0),
        organizer=Mailbox(organizer.display_name, organizer.addr_spec),
        attendee=Mailbox(delivery.contact.name, str(delivery.contact.email)),
    )
    return method, ical
