"""The emails an office receives, in Thai with English below.

Message-IDs are derived from the request, so a mail sent twice after a crash
is recognisably the same mail to the receiving side.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from vcs_shared.credentials import MeetingCredentials
from vcs_shared.thaitime import thai_datetime


def credentials_email(
    *,
    sender: str,
    recipient: str,
    contact_name: str,
    title: str,
    request_id: str,
    meeting_id: str,
    credentials: MeetingCredentials,
    starts_at: datetime,
    ends_at: datetime,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"DOPA VCS: ห้องประชุม {meeting_id} - {title}"
    message["Message-ID"] = f"<assigned.{request_id}@vcs.dopa.go.th>"
    message["X-VCS-Request-Id"] = request_id
    message.set_content(
        f"""เรียน {contact_name}

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
    )
    return message


def released_email(
    *, sender: str, recipient: str, contact_name: str, title: str, request_id: str, meeting_id: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"DOPA VCS: ยกเลิกห้องประชุม {meeting_id} - {title}"
    message["Message-ID"] = f"<released.{request_id}@vcs.dopa.go.th>"
    message["X-VCS-Request-Id"] = request_id
    message.set_content(
        f"""เรียน {contact_name}

คำขอ {request_id} ("{title}") ถูกยกเลิกแล้ว ห้องประชุม {meeting_id} ไม่สามารถใช้สำหรับการประชุมนี้ได้อีก

--
Request {request_id} was cancelled; room {meeting_id} is no longer yours for this meeting.
"""
    )
    return message
