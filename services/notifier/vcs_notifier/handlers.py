"""What the notifier does with each event, and with an operator's redelivery.

The contact comes from ``request.submitted`` (event-carried state); the
credentials come sealed in ``room.assigned`` and are opened only to be put in
the message. Delivery is at-least-once: a crash between sending and recording
sends the same message (same Message-ID) again, unless the outcome reached the local
journal of sent messages first (:mod:`vcs_notifier.journal`, written right after the send):
then it is recorded from there, and nothing is sent again. A duplicated event after the
record sends nothing. Every failure ends recorded: a channel's
:class:`~vcs_notifier.channels.PermanentFailure` at once, a temporary one once
the retries are spent, both as ``credentials.failed`` with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial

import stamina
import structlog

from vcs_notifier.channels import Channel, Notice, PermanentFailure, TemporaryFailure
from vcs_notifier.domain import Booking, Delivery, MailKind, MailOutcome, Rejection
from vcs_notifier.journal import NO_JOURNAL, Sent, SentJournal
from vcs_notifier.reminders import label, plan
from vcs_notifier.store import DeliveryStore, DueReminder, ReminderStore
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.auth import Principal
from vcs_shared.broker import OUTAGES, RetryLater
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer, CredentialsSealError, MeetingCredentials
from vcs_shared.dispatch import HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import (
    CredentialsDelivered,
    CredentialsFailed,
    Event,
    ReminderSent,
    RequestCancelled,
    RequestRejected,
    RequestSubmitted,
    RoomAssigned,
    RoomReassigned,
    RoomReleased,
    SupportClaimed,
    SupportDone,
    SupportRequested,
)
from vcs_shared.metrics import DELIVERIES
from vcs_shared.outbox import SILENT, Announcement, announce
from vcs_shared.scope import Scope

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NotifierDeps:
    store: DeliveryStore
    channels: Sequence[Channel]
    sealer: CredentialsSealer
    reminders: ReminderStore
    reminder_leads: tuple[timedelta, ...] = ()
    send_attempts: int = 5
    claim_lease: timedelta = timedelta(seconds=90)
    """Longer than the longest send (the mailer waits up to 60 s for the relay's reply), so a
    second copy never takes over a send still under way; a handler that died holding it is
    replaced after it, well within the queue's delivery limit."""
    retry_wait: float = 0.2
    clock: Clock = utc_now
    store_afresh: Callable[[], AbstractAsyncContextManager[DeliveryStore]] | None = None
    """The store over a client of its own, opened for one write: see :func:`_recorded`."""
    journal: SentJournal = NO_JOURNAL
    """Where each outcome goes as soon as it is known, before the store records it."""


async def remember_contact(envelope: Envelope[RequestSubmitted], deps: NotifierDeps) -> None:
    """request.submitted → the contact is unsealed and kept for the messages that will follow
    (a contact no configured key opens fails here, and the event is dead-lettered with why)."""
    event = envelope.event
    contact = deps.sealer.open_contact(event.sealed_contact)
    await deps.store.remember(Delivery.of(event, contact, at=deps.clock()))


async def deliver_credentials(envelope: Envelope[RoomAssigned], deps: NotifierDeps) -> None:
    """room.assigned → credentials sent to the office → credentials.delivered (or .failed);
    nothing once the request is being cancelled."""
    event = envelope.event
    booking = Booking.of(event)
    delivery = await _claimed(
        event.request_id, MailKind.assigned, deps, booking=booking, unless=MailKind.cancelled
    )
    if delivery is None:
        return
    delivery = delivery.with_booking(booking)
    # Before sending: a crash after the mail is recorded would leave no second chance.
    reminders = plan(event.request_id, event.starts_at, deps.reminder_leads, now=deps.clock())
    await deps.reminders.schedule(reminders)
    notice = partial(Notice, MailKind.assigned, delivery, at=deps.clock())
    send = partial(_send_sealed, event.sealed_credentials, notice, deps)
    sent = await _sent_once(delivery, MailKind.assigned, send, deps, envelope.correlation_id)
    outcome = sent.outcome
    announcement = _credentials_outcome(delivery, outcome, correlation_id=sent.correlation_id)
    await _record_claimed(delivery, outcome, deps, announcement)
    log.info("delivery.recorded", state=outcome.state)


async def notify_rejection(envelope: Envelope[RequestRejected], deps: NotifierDeps) -> None:
    """request.rejected → the office is told why and what to try instead."""
    event = envelope.event
    delivery = await _claimed(event.request_id, MailKind.rejected, deps)
    if delivery is None:
        return
    notice = Notice(MailKind.rejected, delivery, rejection=Rejection.of(event), at=deps.clock())
    sent = await _sent_once(delivery, MailKind.rejected, partial(_send, notice, deps), deps)
    await _record_claimed(delivery, sent.outcome, deps)


async def notify_cancellation(envelope: Envelope[RequestCancelled], deps: NotifierDeps) -> None:
    """request.cancelled → the office is told the meeting is withdrawn (its calendar entry
    cancelled); after the credentials if they are being sent right now, never before."""
    event = envelope.event
    delivery = await _claimed(event.request_id, MailKind.cancelled, deps, after=MailKind.assigned)
    if delivery is None:
        return
    withdrawn = await deps.reminders.withdraw(event.request_id, at=deps.clock())
    log.info("reminders.withdrawn", count=withdrawn)
    delivery = await deps.store.delivery(event.request_id) or delivery  # the room, if any
    notice = Notice(MailKind.cancelled, delivery, at=deps.clock())
    sent = await _sent_once(delivery, MailKind.cancelled, partial(_send, notice, deps), deps)
    await _recorded(lambda store: store.record_outcome(event.request_id, sent.outcome), deps)
    deps.journal.recorded(event.request_id, MailKind.cancelled)


async def deliver_reassignment(envelope: Envelope[RoomReassigned], deps: NotifierDeps) -> None:
    """room.reassigned → the new room's credentials sent to the office, once per move →
    credentials.delivered (or .failed). One sending of a request's credentials at a time
    (the redelivery claim): a move and an operator's redelivery never cross."""
    event = envelope.event
    delivery = await deps.store.delivery(event.request_id)
    if delivery is None:
        raise RetryLater("request.submitted not seen yet for this request")
    if delivery.reassignments >= event.reassignment or delivery.cancelled:
        log.info("delivery.reassignment_skipped", reassignment=event.reassignment)
        return
    if not await deps.store.claim_redelivery(event.request_id, deps.claim_lease, now=deps.clock()):
        raise RetryLater("the credentials of this request are being sent right now")
    delivery = await deps.store.delivery(event.request_id)
    if delivery is None or delivery.reassignments >= event.reassignment:  # another copy sent it
        await deps.store.release_redelivery_claim(event.request_id)
        return
    booking = Booking.moved(event)
    delivery = delivery.with_booking(booking)
    moved_from = event.old_meeting_id  # the mail names the room it left
    notice = partial(Notice, MailKind.assigned, delivery, moved_from=moved_from, at=deps.clock())
    error = await _send_sealed(event.sealed_credentials, notice, deps)
    outcome = MailOutcome.of(MailKind.assigned, error, at=deps.clock())
    announcement = _credentials_outcome(delivery, outcome, correlation_id=envelope.correlation_id)
    await _recorded(
        lambda store: store.record_reassignment(
            event.request_id, booking, event.reassignment, outcome, announcement
        ),
        deps,
    )
    log.info("delivery.reassigned", state=outcome.state, meeting_id=event.new_meeting_id)


async def send_due_reminders(deps: NotifierDeps, *, limit: int = 50) -> int:
    """Sends the reminders whose time has come and that this process claims first (another
    notifier may take some: each goes once); how many this call sent. A reminder of a request
    since cancelled, or whose credentials cannot be opened, is dropped with the reason."""
    sent = 0
    for due in await deps.reminders.due(deps.clock(), limit=limit):
        if not await deps.reminders.claim(due.reminder_id, deps.claim_lease, now=deps.clock()):
            continue
        state, error, announcement = await _remind(due, deps)
        await deps.reminders.finish(
            due.reminder_id, state, at=deps.clock(), error=error, announcement=announcement
        )
        log.info("reminder.done", reminder=due.reminder_id, state=state, error=error)
        sent += state == "sent"
    return sent


async def _remind(due: DueReminder, deps: NotifierDeps) -> tuple[str, str | None, Announcement]:
    """Sends one reminder by mail and LINE; with ``reminder.sent``, which the office's webhook
    receives as its reminder, for every reminder of a live booking, whatever mail and LINE
    answered (their failure is this reminder's record, not the webhook's business)."""
    delivery = await deps.store.delivery(due.request_id)
    if delivery is None or delivery.booking is None:
        return "skipped", "no room is known for this request", SILENT
    if delivery.cancelled:
        return "skipped", "the request was cancelled", SILENT
    booking = delivery.booking
    reminded = ReminderSent(
        **delivery.subject(),
        lead=label(due.lead),
        meeting_id=booking.meeting_id,
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        sent_at=deps.clock(),
    )
    announcement = announce(reminded, correlation_id=due.request_id)
    notice = partial(Notice, MailKind.reminder, delivery, lead=due.lead, at=deps.clock())
    error = await _send_sealed(booking.sealed_credentials, notice, deps)
    return ("sent" if error is None else "failed"), error, announcement


class RedeliveryRefused(Exception):
    """The credentials of a request cannot be sent again now; the message says why."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.missing = missing


async def redeliver(
    request_id: str, scope: Scope, deps: NotifierDeps, *, by: Principal
) -> MailOutcome:
    """An operator's redelivery: the credentials sent again to the office (after
    ``delivery_failed``, or when the office lost them), recorded with its event like the first
    sending, and with its audit entry (``by``). :class:`RedeliveryRefused` (``missing``: no
    such request in ``scope``)."""
    delivery = await deps.store.delivery(request_id)
    if delivery is None or not scope.covers_province(delivery.province_code):
        raise RedeliveryRefused("no such request", missing=True)
    refusal = delivery.redelivery_refusal()
    if refusal is not None or delivery.booking is None:
        raise RedeliveryRefused(refusal or "no room is assigned to this request")
    if not await deps.store.claim_redelivery(request_id, deps.claim_lease, now=deps.clock()):
        raise RedeliveryRefused("the credentials of this request are being sent again already")
    notice = partial(Notice, MailKind.assigned, delivery, at=deps.clock())
    error = await _send_sealed(delivery.booking.sealed_credentials, notice, deps)
    outcome = MailOutcome.of(MailKind.assigned, error, at=deps.clock())
    announced = _credentials_outcome(delivery, outcome, correlation_id=request_id)
    entry = AuditRecorded(
        actor=Actor.of(by),
        action=AuditAction.credentials_redeliver,
        outcome="success" if outcome.error is None else "failure",
        target=Target(kind="request", id=request_id),
        provinces=(delivery.province_code,),
        after="credentials sent again" if outcome.error is None else "sending failed",
        detail=outcome.error,
        at=outcome.at,
    )
    announcement = replace(announced, audit=(entry,))
    await deps.store.record_redelivery(request_id, outcome, announcement)
    log.info("delivery.redelivered", state=outcome.state, request_id=request_id)
    return outcome


def _credentials_outcome(
    delivery: Delivery, outcome: MailOutcome, *, correlation_id: str | None
) -> Announcement:
    subject = delivery.subject()
    result: Event
    if outcome.error is None:
        result = CredentialsDelivered(**subject, channel="email", delivered_at=outcome.at)
    else:
        result = CredentialsFailed(**subject, channel="email", error=outcome.error)
    return announce(result, correlation_id=correlation_id)


async def _claimed(
    request_id: str,
    kind: MailKind,
    deps: NotifierDeps,
    *,
    booking: Booking | None = None,
    unless: MailKind | None = None,
    after: MailKind | None = None,
) -> Delivery | None:
    """The delivery, once this handler holds the right to send its ``kind`` message; None when
    there is nothing to send (sent before; withdrawn, see ``unless``; a cancellation of a
    request never seen).

    The claim comes first and returns the delivery (one write on the usual path); only when
    it is refused is the delivery read to tell why. The other messages need the contact:
    without it (``request.submitted`` not seen yet) the event is retried later.
    """
    claimed = await deps.store.claim(
        request_id,
        kind,
        deps.claim_lease,
        now=deps.clock(),
        booking=booking,
        unless=unless,
        after=after,
    )
    if claimed is not None:
        return claimed
    delivery = await deps.store.delivery(request_id)
    if delivery is None:
        if kind is not MailKind.cancelled:
            raise RetryLater("request.submitted not seen yet for this request")
        return None
    if delivery.recorded(kind):
        log.info("delivery.duplicate", kind=kind.value)
        return None
    if unless is not None and unless in delivery.claimed:
        log.info("delivery.withdrawn", kind=kind.value, by=unless.value)
        return None
    raise RetryLater(f"another {kind} message of this request is under way right now")


async def _record_claimed(
    delivery: Delivery,
    outcome: MailOutcome,
    deps: NotifierDeps,
    announcement: Announcement = SILENT,
) -> None:
    """Records the outcome of the mail ``delivery`` (as :func:`_claimed` returned it) was
    claimed for. With no outcome on it yet, its outbox is empty (only outcomes add entries),
    so the store tries its write on that without reading first."""
    first = not delivery.outcomes
    await _recorded(
        lambda store: store.record_outcome(delivery.request_id, outcome, announcement, first=first),
        deps,
    )
    deps.journal.recorded(delivery.request_id, outcome.kind)


async def _sent_once(
    delivery: Delivery,
    kind: MailKind,
    send: Callable[[], Awaitable[str | None]],
    deps: NotifierDeps,
    correlation_id: str | None = None,
) -> Sent:
    """The outcome of the ``kind`` message of a claimed delivery: ``send`` (why it failed, or
    None) run and its outcome journaled before anything else, or, when the journal already
    holds one (a handler of this process sent it, then lost its claim to the store's outage),
    that one, sent nothing again."""
    journaled = deps.journal.outcome(delivery.request_id, kind)
    if journaled is not None:
        log.info("delivery.journaled", kind=kind.value, state=journaled.outcome.state)
        return journaled
    outcome = MailOutcome.of(kind, await send(), at=deps.clock())
    sent = Sent(delivery.request_id, outcome, correlation_id)
    await deps.journal.write(sent)
    return sent


async def replay_journal(deps: NotifierDeps) -> None:
    """At a notifier's start, before it consumes: every outcome the journal holds that the
    store does not record yet is recorded now (with its event), as the handler that sent it
    would have; then the journal keeps none of them.

    The write is :func:`_recorded`'s (idempotent, waiting out an outage however long): a
    process killed between the relay's ``250`` and its record leaves its successor nothing to
    send again. An entry whose request the store does not know is dropped (another
    deployment's journal)."""
    entries = await deps.journal.entries()
    for sent in entries:

        async def record(store: DeliveryStore, sent: Sent = sent) -> None:
            delivery = await store.delivery(sent.request_id)
            if delivery is None or delivery.recorded(sent.outcome.kind):
                return
            announcement = SILENT
            if sent.outcome.kind is MailKind.assigned:
                announcement = _credentials_outcome(
                    delivery, sent.outcome, correlation_id=sent.correlation_id
                )
            if await store.record_outcome(sent.request_id, sent.outcome, announcement):
                log.warning("journal.replayed", request_id=sent.request_id, kind=sent.outcome.kind)

        await _recorded(record, deps)
    await deps.journal.forget([sent.key for sent in entries])


RECORD_AFRESH_AFTER = 3
"""Failed attempts at recording a sent message before the next ones go through a client of
their own (:attr:`NotifierDeps.store_afresh`)."""

BROKEN_CLIENT = RuntimeError
"""What PyMongo's async client raised in the chaos soak once a store freeze had broken it
(``Lock is not acquired``); it stays broken until the process restarts
(:mod:`vcs_shared.store_watchdog`)."""


async def _recorded(
    write: Callable[[DeliveryStore], Awaitable[object]], deps: NotifierDeps
) -> None:
    """Writes the record of a message that was just sent, waiting out a store outage however
    long it lasts.

    Once the message went out, only this write stands between it and a second copy: were the
    outage's error to leave the handler, the consumer would run the whole handler again, find
    its own send claim still held, wait, and once the claim's lease ran out send the message
    again (the chaos soak's duplicate mails: a store frozen right after a send). The writes
    are idempotent (an outcome is recorded once), so one that reached the store before the
    connection failed is harmless to repeat. After a few failures each attempt opens a
    client of its own: the service's client can stay broken after a freeze while the store
    answers again, and the watchdog's restart would otherwise come before the record.
    """
    failures = 0
    async for attempt in stamina.retry_context(
        on=(*OUTAGES, BROKEN_CLIENT), attempts=None, timeout=None, wait_initial=0.2, wait_max=5.0
    ):
        with attempt:
            try:
                if failures < RECORD_AFRESH_AFTER or deps.store_afresh is None:
                    await write(deps.store)
                else:
                    async with deps.store_afresh() as store:
                        await write(store)
            except Exception:
                failures += 1
                log.warning("delivery.record_failed", failures=failures)
                raise


async def _send_sealed(
    sealed_credentials: str, notice: Callable[[MeetingCredentials], Notice], deps: NotifierDeps
) -> str | None:
    """Opens the credentials and sends the ``notice`` carrying them; why it could not (a
    retired key cannot open them), or None when it went."""
    try:
        credentials = deps.sealer.open(sealed_credentials)
    except CredentialsSealError:
        return "the credentials cannot be opened (credentials key retired)"
    return await _send(notice(credentials), deps)


async def _send(notice: Notice, deps: NotifierDeps) -> str | None:
    """Sends by each channel, retrying temporary failures with backoff; the reason if it
    finally failed (one line), None when it went out."""
    errors = []
    for channel in deps.channels:
        try:
            async for attempt in stamina.retry_context(
                on=TemporaryFailure,
                attempts=deps.send_attempts,
                wait_initial=deps.retry_wait,
                wait_max=5.0,
            ):
                with attempt:
                    await channel.send(notice)
            DELIVERIES.labels(channel.name, "delivered").inc()
        except PermanentFailure as exc:
            log.warning("delivery.refused", channel=channel.name, error=str(exc))
            errors.append(f"{channel.name}: {exc}")
            DELIVERIES.labels(channel.name, "refused").inc()
        except TemporaryFailure as exc:
            log.warning("delivery.failed", channel=channel.name, error=str(exc))
            errors.append(f"{channel.name}: failed after {deps.send_attempts} attempts: {exc}")
            DELIVERIES.labels(channel.name, "failed").inc()
        except Exception as exc:  # a fault nobody foresaw still ends recorded, never silent
            log.exception("delivery.crashed", channel=channel.name)
            errors.append(f"{channel.name}: {type(exc).__name__}: {exc}")
            DELIVERIES.labels(channel.name, "crashed").inc()
    return " | ".join(errors) or None


async def only_forwarded(envelope: Envelope[Event], deps: NotifierDeps) -> None:
    """An event the notifier has nothing to send for by mail or LINE: it only goes on to the
    office's webhook, as every event does once its handler is done (the composition root
    follows every handler with the webhook's scheduling)."""


HANDLERS = (
    HandlerTable[NotifierDeps]("notifier")
    .on(RequestSubmitted, remember_contact)
    .on(RoomAssigned, deliver_credentials)
    .on(RequestRejected, notify_rejection)
    .on(RequestCancelled, notify_cancellation)
    .on(RoomReassigned, deliver_reassignment)
    .on(RoomReleased, only_forwarded)
    .on(CredentialsDelivered, only_forwarded)
    .on(CredentialsFailed, only_forwarded)
    .on(ReminderSent, only_forwarded)
    .on(SupportRequested, only_forwarded)
    .on(SupportClaimed, only_forwarded)
    .on(SupportDone, only_forwarded)
)
"""The one event-to-handler table of the notifier: every event of the contract (each then
goes to the office's webhook, see :mod:`vcs_notifier.webhook_delivery`)."""
