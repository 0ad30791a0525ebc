"""The emails an office receives, in Thai with English below.

Message-IDs are derived from the request and the kind of mail, so a mail sent
twice after a crash is recognisably the same mail to the receiving side.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from vcs_notifier.channels import Notice
from vcs_notifier.domain import Delivery, MailKind
from vcs_shared.credentials import MeetingCredentials
from vcs_shared.thaitime import thai_datetime


def write_mail(notice: Notice, sender: str) -> EmailMessage:
    """The mail of a notice (the e-mail channel's ``compose``)."""
    delivery = notice.delivery
    if notice.kind is MailKind.released:
        booking = delivery.booking
        return released_email(
            sender=sender, delivery=delivery, meeting_id=booking.meeting_id if booking else ""
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
    )


def credentials_email(
    *,
    sender: str,
    delivery: Delivery,
    meeting_id: str,
    credentials: MeetingCredentials,
    starts_at: datetime,
    ends_at: datetime,
) -> EmailMessage:
    title, request_id = delivery.title, delivery.request_id
    text = f"""\
ศูนย์สื่อสารกรมการปกครองได้จัดห้องประชุม DOPA VCS (Zoom) สำหรับการประชุม "{title}"
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
    subject = f"DOPA VCS: ห้องประชุม {meeting_id} - {title}"
    return _mail(MailKind.assigned, sender, delivery, subject, text)


def released_email(*, sender: str, delivery: Delivery, meeting_id: str) -> EmailMessage:
    title, request_id = delivery.title, delivery.request_id
    text = f"""\
คำขอ {request_id} ("{title}") ถูกยกเลิกแล้ว ห้องประชุม {meeting_id} ไม่สามารถใช้สำหรับการประชุมนี้ได้อีก

--
Request {request_id} was cancelled; room {meeting_id} is no longer yours for this meeting.
"""
    subject = f"DOPA VCS: ยกเลิกห้องประชุม {meeting_id} - {title}"
    return _mail(MailKind.released, sender, delivery, subject, text)


def _mail(kind: MailKind, sender: str, delivery: Delivery, subject: str, text: str) -> EmailMessage:
    """The headers every mail has, and the salutation before its ``text``."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = str(delivery.contact.email)
    message["Subject"] = subject
    message["Message-ID"] = f"<{kind}.{delivery.request_id}@vcs.dopa.go.th>"
    message["X-VCS-Request-Id"] = delivery.request_id
    message.set_content(f"เรียน {delivery.contact.name}\n\n{text}")
    return message
