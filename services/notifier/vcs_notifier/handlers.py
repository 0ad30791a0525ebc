"""What the notifier does with each event.

The contact comes from ``request.submitted`` (event-carried state); the
credentials come sealed in ``room.assigned`` and are opened only to be put in
the mail. Mail is at-least-once: a crash between sending and recording sends
the same mail (same Message-ID) again; a duplicated event after the record
sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
import stamina
import structlog

from vcs_notifier.domain import Delivery, MailKind, MailOutcome
from vcs_notifier.mailer import Mailer, PermanentMailError
from vcs_notifier.messages import credentials_email, released_email
from vcs_notifier.store import DeliveryStore
from vcs_shared.broker import RetryLater
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.dispatch import HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import (
    CredentialsDelivered,
    CredentialsFailed,
    Event,
    RequestSubmitted,
    RoomAssigned,
    RoomReleased,
)
from vcs_shared.outbox import announce

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NotifierDeps:
    store: DeliveryStore
    mailer: Mailer
    sealer: CredentialsSealer
    sender: str
    send_attempts: int = 5
    claim_lease: timedelta = timedelta(seconds=30)
    clock: Clock = utc_now


async def remember_contact(envelope: Envelope[RequestSubmitted], deps: NotifierDeps) -> None:
    """request.submitted → the contact is kept for the mail that will follow."""
    await deps.store.remember(Delivery.of(envelope.event, at=deps.clock()))


async def deliver_credentials(envelope: Envelope[RoomAssigned], deps: NotifierDeps) -> None:
    """room.assigned → credentials mailed to the contact → credentials.delivered (or .failed)."""
    event = envelope.event

    def compose(delivery: Delivery) -> EmailMessage:
        return credentials_email(
            sender=deps.sender,
            delivery=delivery,
            meeting_id=event.meeting_id,
            credentials=deps.sealer.open(event.sealed_credentials),
            starts_at=event.starts_at,
            ends_at=event.ends_at,
        )

    sent = await _mail_once(event.request_id, MailKind.assigned, compose, deps)
    if sent is None:
        return
    outcome = MailOutcome.of(MailKind.assigned, sent.error, at=deps.clock())
    result: Event
    if sent.error is None:
        result = CredentialsDelivered(**event.subject(), channel="email", delivered_at=outcome.at)
    else:
        result = CredentialsFailed(**event.subject(), channel="email", error=sent.error)
    announcement = announce(result, correlation_id=envelope.correlation_id)
    await deps.store.record_outcome(event.request_id, outcome, announcement)
    log.info("delivery.recorded", state=outcome.state)


async def notify_release(envelope: Envelope[RoomReleased], deps: NotifierDeps) -> None:
    """room.released → the contact is told the room is no longer theirs."""
    event = envelope.event

    def compose(delivery: Delivery) -> EmailMessage:
        return released_email(sender=deps.sender, delivery=delivery, meeting_id=event.meeting_id)

    sent = await _mail_once(event.request_id, MailKind.released, compose, deps)
    if sent is None:
        return
    outcome = MailOutcome(
        MailKind.released, "delivered" if sent.error is None else "failed", at=deps.clock()
    )
    await deps.store.record_outcome(event.request_id, outcome)


@dataclass(frozen=True, slots=True)
class Sent:
    """A mail that went out (``error`` None) or failed for good."""

    error: str | None


async def _mail_once(
    request_id: str,
    kind: MailKind,
    compose: Callable[[Delivery], EmailMessage],
    deps: NotifierDeps,
) -> Sent | None:
    """Sends the ``kind`` mail of a request unless it was sent before; None when there was
    nothing to send.

    The credentials need the contact: without it (``request.submitted`` not seen
    yet) the event is retried later. A release notice without a contact is dropped.
    """
    delivery = await deps.store.delivery(request_id)
    if delivery is None:
        if kind is MailKind.assigned:
            raise RetryLater("request.submitted not seen yet for this request")
        return None
    if delivery.recorded(kind):
        log.info("delivery.duplicate", kind=kind.value)
        return None
    if not await deps.store.claim(request_id, kind, deps.claim_lease, now=deps.clock()):
        raise RetryLater("another copy of this event is being delivered right now")
    return Sent(await _send(compose(delivery), deps))


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


HANDLERS = (
    HandlerTable[NotifierDeps]("notifier")
    .on(RequestSubmitted, remember_contact)
    .on(RoomAssigned, deliver_credentials)
    .on(RoomReleased, notify_release)
)
"""The one event-to-handler table of the notifier."""
