"""The emails an office receives, in Thai with English below.

Message-IDs are derived from the request and the kind of mail, so a mail sent
twice after a crash is recognisably the same mail to the receiving side.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from vcs_notifier.channels import Notice
from vcs_notifier.domain import Delivery, MailKind
from vcs_notifier.headers import mailbox, set_headers, shortened
from vcs_shared.credentials import MeetingCredentials
from vcs_shared.thaitime import thai_datetime


def write_mail(notice: Notice, sender: str) -> EmailMessage:
    """The mail of a notice (the e-mail channel's ``compose``)."""
    delivery = notice.delivery
    if notice.kind is MailKind.released:
        booking = delivery.booking
        return released_email(
            sender=sender,
            delivery=delivery,
            meeting_id=booking.meeting_id if booking else "",
            at=notice.at,
        )
    if delivery.booking is None or notice.credentials is None:
        raise ValueError(f"a {notice.kind} mail needs the booking and its credentials")
    return credentials_email(
        sender=sender,
        delivery=delivery,
        meeting_id=delivery.booking.meeting_id,
        credentials=notice.credentials,
        starts_at=delivery.booking.starts_at,
        ends_at=delivery.booking.ends_at,
        at=notice.at,
        moved_from=notice.moved_from,
    )


def credentials_email(
    *,
    sender: str,
    delivery: Delivery,
    meeting_id: str,
    credentials: MeetingCredentials,
    starts_at: datetime,
    ends_at: datetime,
    at: datetime,
    moved_from: str | None = None,
) -> EmailMessage:
    """The credentials; with ``moved_from``, of the room an operator moved the booking to
    (said first, and a Message-ID of its own, so that the office's mail keeps both)."""
    title, request_id = delivery.title, delivery.request_id
    moved = (
        ""
        if moved_from is None
        else f"""\
ห้องประชุมของท่านเปลี่ยนจาก {moved_from} เป็น {meeting_id} กรุณาใช้ข้อมูลด้านล่างนี้แทนข้อมูลเดิม
(Your room was changed from {moved_from} to {meeting_id}: use the details below instead.)

"""
    )
    text = f"""\
{moved}ศูนย์สื่อสารกรมการปกครองได้จัดห้องประชุม DOPA VCS (Zoom) สำหรับการประชุม "{title}"
เริ่ม {thai_datetime(starts_at)}
สิ้นสุด {thai_datetime(ends_at)}

หมายเลขห้องประชุม (Meeting ID): {meeting_id}
รหัสผ่าน (Passcode): {credentials.passcode}
ลิงก์เข้าร่วมประชุม: {credentials.join_url}

เลขที่คำขอ: {request_id}

--
Your DOPA VCS room: Meeting ID {meeting_id}, passcode {credentials.passcode},
join URL {credentials.join_url}. Request {request_id}.
"""
    subject = f"DOPA VCS: ห้องประชุม {meeting_id} - {shortened(title)}"
    if moved_from is not None:
        subject = f"DOPA VCS: เปลี่ยนห้องประชุมเป็น {meeting_id} - {shortened(title)}"
    mail = _mail(MailKind.assigned, sender, delivery, subject, text, at)
    if moved_from is not None:
        del mail["Message-ID"]
        mail["Message-ID"] = f"<{MailKind.assigned}.{request_id}.{meeting_id}@vcs.dopa.go.th>"
    return mail


def released_email(
    *, sender: str, delivery: Delivery, meeting_id: str, at: datetime
) -> EmailMessage:
    title, request_id = delivery.title, delivery.request_id
    text = f"""\
คำขอ {request_id} ("{title}") ถูกยกเลิกแล้ว ห้องประชุม {meeting_id} ไม่สามารถใช้สำหรับการประชุมนี้ได้อีก

--
Request {request_id} was cancelled; room {meeting_id} is no longer yours for this meeting.
"""
    subject = f"DOPA VCS: ยกเลิกห้องประชุม {meeting_id} - {shortened(title)}"
    return _mail(MailKind.released, sender, delivery, subject, text, at)


def _mail(
    kind: MailKind, sender: str, delivery: Delivery, subject: str, text: str, at: datetime
) -> EmailMessage:
    """The headers every mail has (through the header API: :mod:`vcs_notifier.headers`), and
    the salutation before its ``text``."""
    message = EmailMessage()
    set_headers(
        message,
        sender=sender,
        recipient=mailbox(delivery.contact.name, str(delivery.contact.email)),
        subject=subject,
        message_id=f"<{kind}.{delivery.request_id}@vcs.dopa.go.th>",
        request_id=delivery.request_id,
        date=at,
    )
    message.set_content(f"เรียน {delivery.contact.name}\n\n{text}")
    return message
