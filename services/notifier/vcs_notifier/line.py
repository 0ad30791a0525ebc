"""LINE as a delivery channel: a push message to the office's LINE group, through the LINE
Messaging API (``POST /v2/bot/message/push``, the channel access token as a Bearer token).

Off unless ``VCS_LINE_CHANNEL_TOKEN`` is set; an office receives LINE messages once its
group id is registered (``PUT /v1/offices/{district_code}/line``). Each notice carries an
``X-Line-Retry-Key`` derived from the request and the kind of message, so a retry after a
lost answer is not shown twice (LINE answers ``409`` to a key it already accepted).
"""

from __future__ import annotations

import uuid
from typing import Protocol

import httpx

from vcs_notifier.channels import Notice, PermanentFailure, TemporaryFailure
from vcs_notifier.reminders import label, lead_th
from vcs_shared.thaitime import BANGKOK, thai_datetime

PUSH_PATH = "/v2/bot/message/push"
RETRY_KEY_NAMESPACE = uuid.UUID("0f6a3a52-6a76-4a57-9d7c-2c1c3b0a51e0")
MAX_TEXT = 5000
"""LINE's limit on one text message."""


class LineGroups(Protocol):
    """Where each office's LINE group id is kept."""

    async def line_group(self, district_code: str) -> str | None: ...


class LineClient:
    """The one LINE Messaging API call the notifier makes."""

    def __init__(self, token: str, *, base_url: str = "https://api.line.me", timeout: float = 10.0):
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"authorization": f"Bearer {token}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def push(self, to: str, text: str, *, retry_key: uuid.UUID) -> None:
        """One text message to ``to``; :class:`TemporaryFailure` for what a later try may
        change (no connection, ``429``, ``5xx``), :class:`PermanentFailure` for a refusal."""
        body = {"to": to, "messages": [{"type": "text", "text": text[:MAX_TEXT]}]}
        try:
            response = await self._client.post(
                PUSH_PATH, json=body, headers={"x-line-retry-key": str(retry_key)}
            )
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"LINE not reached: {type(exc).__name__}: {exc}") from exc
        if response.is_success or response.status_code == httpx.codes.CONFLICT:
            return  # 409: this retry key was accepted before
        reason = _reason(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise TemporaryFailure(f"LINE answered {response.status_code}: {reason}")
        raise PermanentFailure(f"LINE refused the message ({response.status_code}: {reason})")


class LineChannel:
    """Pushes each notice to the office's LINE group, if it registered one."""

    name = "line"

    def __init__(self, client: LineClient, groups: LineGroups) -> None:
        self._client = client
        self._groups = groups

    async def send(self, notice: Notice) -> None:
        group = await self._groups.line_group(notice.delivery.district_code)
        if group is None:
            return
        what = f"{notice.request_id}/{notice.kind}"
        if notice.lead is not None:  # each reminder is a message of its own
            what += f"/{label(notice.lead)}"
        retry_key = uuid.uuid5(RETRY_KEY_NAMESPACE, what)
        await self._client.push(group, line_text(notice), retry_key=retry_key)


def line_text(notice: Notice) -> str:
    """The notice as one short Thai text (the office's group reads it on a phone): the
    credentials with the meeting's time, or what happened to the request."""
    delivery = notice.delivery
    booking = delivery.booking
    heading = f"DOPA VCS: {delivery.title}"
    if notice.lead is not None:
        heading = f"เตือน: การประชุมจะเริ่มในอีก {lead_th(notice.lead)}\n{heading}"
    if notice.credentials is not None and booking is not None:
        ends = booking.ends_at.astimezone(BANGKOK).strftime("%H:%M")
        return "\n".join(
            (
                heading,
                f"{thai_datetime(booking.starts_at)} ถึง {ends} น.",
                f"Meeting ID: {booking.meeting_id}",
                f"รหัสผ่าน (passcode): {notice.credentials.passcode}",
                f"เข้าร่วม: {notice.credentials.join_url}",
            )
        )
    what = NEWS.get(str(notice.kind), f"มีความเปลี่ยนแปลงของคำขอ ({notice.kind})")
    return f"{heading}\n{what}\nคำขอ {notice.request_id}"


NEWS = {
    "released": "ยกเลิกแล้ว: ห้องประชุมนี้ไม่ได้จองไว้ให้สำนักงานอีกต่อไป",
    "cancelled": "ยกเลิกแล้ว: ห้องประชุมนี้ไม่ได้จองไว้ให้สำนักงานอีกต่อไป",
    "rejected": "จัดห้องประชุมให้ไม่ได้ โปรดดูเหตุผลและยื่นคำขอใหม่ในระบบ",
}
"""What a notice without credentials says, by its kind."""


def _reason(response: httpx.Response) -> str:
    try:
        message = response.json().get("message")
    except ValueError:
        message = None
    return str(message or response.reason_phrase)
