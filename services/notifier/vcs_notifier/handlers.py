"""What the notifier does with each event.

The contact comes from ``request.submitted`` (event-carried state); the
credentials come sealed in ``room.assigned`` and are opened only to be put in
the mail. Mail is at-least-once: a crash between sending and recording sends
the same mail (same Message-ID) again; a duplicated event after the record
sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from typing import Any

import aiosmtplib
import stamina
import structlog

from vcs_notifier.mailer import Mailer, PermanentMailError
from vcs_notifier.messages import credentials_email, released_email
from vcs_notifier.store import DeliveryStore
from vcs_shared.broker import Handler, RetryLater
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.envelope import Envelope, encode
from vcs_shared.events import (
    CredentialsDelivered,
    CredentialsFailed,
    Event,
    RequestSubmitted,
    RoomAssigned,
    RoomReleased,
)
from vcs_shared.outbox import OutboxRelay

log = structlog.get_logger(__name__)

SOURCE = "notifier"


@dataclass(frozen=True, slots=True)
class NotifierDeps:
    store: DeliveryStore
    relay: OutboxRelay
    mailer: Mailer
    sealer: CredentialsSealer
    sender: str
    send_attempts: int = 5
    claim_lease: timedelta = timedelta(seconds=30)


async def remember_contact(envelope: Envelope, deps: NotifierDeps) -> None:
    """request.submitted → the contact is kept for the mail that will follow."""
    assert isinstance(envelope.event, RequestSubmitted)
    await deps.store.remember_request(envelope.event)


async def deliver_credentials(envelope: Envelope, deps: NotifierDeps) -> None:
    """room.assigned → credentials mailed to the contact → credentials.delivered (or .failed)."""
    event = envelope.event
    assert isinstance(event, RoomAssigned)
    delivery = await _claim(event.request_id, "assigned", deps, contact_required=True)
    if delivery is None:
        return
    contact = delivery["contact"]
    mail = credentials_email(
        sender=deps.sender,
        recipient=contact["email"],
        contact_name=contact["name"],
        title=delivery["title"],
        request_id=event.request_id,
        meeting_id=event.meeting_id,
        credentials=deps.sealer.open(event.sealed_credentials),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
    )
    error = await _send(mail, deps)
    now = datetime.now(UTC)
    result: Event
    if error is None:
        result = CredentialsDelivered(
            request_id=event.request_id,
            province_code=event.province_code,
            district_code=event.district_code,
            channel="email",
            delivered_at=now,
        )
        outcome = {"state": "delivered", "channel": "email", "at": now}
    else:
        result = CredentialsFailed(
            request_id=event.request_id,
            province_code=event.province_code,
            district_code=event.district_code,
            channel="email",
            error=error,
        )
        outcome = {"state": "failed", "channel": "email", "at": now, "error": error}
    message = encode(result, source=SOURCE, correlation_id=envelope.correlation_id)
    written = await deps.store.record_outcome(event.request_id, "assigned", outcome, [message])
    if written is not None:
        await deps.relay.publish_now(event.request_id, written)
    log.info("delivery.recorded", state=outcome["state"])


async def notify_release(envelope: Envelope, deps: NotifierDeps) -> None:
    """room.released → the contact is told the room is no longer theirs."""
    event = envelope.event
    assert isinstance(event, RoomReleased)
    delivery = await _claim(event.request_id, "released", deps, contact_required=False)
    if delivery is None:
        return
    contact = delivery["contact"]
    mail = released_email(
        sender=deps.sender,
        recipient=contact["email"],
        contact_name=contact["name"],
        title=delivery["title"],
        request_id=event.request_id,
        meeting_id=event.meeting_id,
    )
    error = await _send(mail, deps)
    outcome = {"state": "delivered" if error is None else "failed", "at": datetime.now(UTC)}
    await deps.store.record_outcome(event.request_id, "released", outcome, [])


async def _claim(
    request_id: str, kind: str, deps: NotifierDeps, *, contact_required: bool
) -> dict[str, Any] | None:
    """The delivery record once this handler holds the right to send the ``kind`` mail, or None
    when there is nothing to send (sent before, or no contact known and none needed)."""
    delivery = await deps.store.delivery(request_id)
    if delivery is None:
        if contact_required:
            raise RetryLater("request.submitted not seen yet for this request")
        return None
    if kind in delivery:
        log.info("delivery.duplicate", kind=kind)
        return None
    if not await deps.store.claim(request_id, kind, deps.claim_lease):
        raise RetryLater("another copy of this event is being delivered right now")
    return delivery


async def _send(mail: EmailMessage, deps: NotifierDeps) -> str | None:
    """Sends with retries on transient SMTP trouble; returns the error if it finally failed."""
    try:
        async for attempt in stamina.retry_context(
            on=(OSError, TimeoutError, aiosmtplib.SMTPException),
            attempts=deps.send_attempts,
            wait_initial=0.2,
            wait_max=5.0,
        ):
            with attempt:
                await deps.mailer.send(mail)
    except PermanentMailError as exc:
        log.warning("mail.refused", error=str(exc))
        return f"refused: {exc}"
    except Exception as exc:  # retries exhausted: the office must hear about it via the status
        log.warning("mail.failed", error=repr(exc))
        return f"failed after {deps.send_attempts} attempts: {exc}"
    return None


def handler_table(deps: NotifierDeps) -> Mapping[type[Event], Handler]:
    """The one explicit event-to-handler table of the notifier."""
    return {
        RequestSubmitted: partial(remember_contact, deps=deps),
        RoomAssigned: partial(deliver_credentials, deps=deps),
        RoomReleased: partial(notify_release, deps=deps),
    }
