"""Every event of an office's requests to its webhook: scheduled when handled, sent by a loop.

:func:`schedule` runs after each handler (the message is in the store before the
event is acked, so nothing is lost between the two); :class:`WebhookDispatcher`
is a background loop of every notifier process that tries the messages that are
due, retries the failures on the :class:`~vcs_notifier.webhook_domain.RetryPolicy`
and, once a message's window has passed, records it failed for good: for the
credentials' message that is ``credentials.failed`` (the request
``delivery_failed``, on the operators' lists, ready for a redelivery); for any
other message it is the record, a warning and ``vcs_deliveries{channel="webhook",
result="failed"}``, and no event (the loop rule in :mod:`vcs_notifier.webhook_domain`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

import structlog

from vcs_notifier.channels import PermanentFailure, TemporaryFailure
from vcs_notifier.webhook_domain import (
    CARRYING_CREDENTIALS,
    WEBHOOK_CHANNEL,
    RetryPolicy,
    WebhookMessage,
    carries_credentials,
)
from vcs_notifier.webhook_store import WebhookStore
from vcs_notifier.webhooks import WebhookSender
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer, CredentialsSealError
from vcs_shared.envelope import Envelope
from vcs_shared.events import Event
from vcs_shared.metrics import DELIVERIES
from vcs_shared.outbox import announce

log = structlog.get_logger(__name__)


def cloudevent_body(envelope: Envelope[Event], sealer: CredentialsSealer) -> str:
    """The event as the CloudEvent on the bus (same id, type, source, subject, time), as an
    office's own receiver gets it: ``room.assigned`` and ``room.reassigned`` carry the opened
    ``credentials``
    (passcode, join URL) instead of the sealed ones, which only the services can open."""
    event = envelope.event
    data: dict[str, Any] = json.loads(event.model_dump_json())
    if isinstance(event, CARRYING_CREDENTIALS):
        del data["sealed_credentials"]
        try:
            data["credentials"] = sealer.open(event.sealed_credentials).model_dump()
        except CredentialsSealError:  # a key since retired: the room without its passcode
            data["credentials"] = None
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": envelope.id,
        "source": envelope.source,
        "type": event.cloudevent_type(),
        "subject": event.request_id,
        "datacontenttype": "application/json",
    }
    if envelope.time is not None:
        attributes["time"] = envelope.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if envelope.correlation_id:
        attributes["correlationid"] = envelope.correlation_id
    return json.dumps({**attributes, "data": data}, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class WebhookDispatcher:
    """Sends the webhook messages that are due, from the store's schedule."""

    store: WebhookStore
    sender: WebhookSender
    sealer: CredentialsSealer
    retry: RetryPolicy
    clock: Clock = utc_now
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 1.0
    batch: int = 20
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def schedule(self, envelope: Envelope[Event]) -> None:
        """After an event is handled: a message for the office's webhook, if it has one (a
        second copy of the event schedules nothing). Whether it has one is answered from a
        copy at most 2 s old (:meth:`~vcs_notifier.webhook_store.MongoWebhookStore.has_webhook`);
        the message is sent with the registration as it is then."""
        event = envelope.event
        if not await self.store.has_webhook(event.district_code):
            return
        message = WebhookMessage(
            message_id=envelope.id,
            request_id=event.request_id,
            province_code=event.province_code,
            district_code=event.district_code,
            event_name=event.name,
            body=cloudevent_body(envelope, self.sealer),
            first_due=self.clock(),
            carries_credentials=carries_credentials(event),
        )
        if await self.store.add(message):
            log.info("webhook.scheduled", webhook_event=event.name)
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Tries what is due until ``stop``; woken early by a new message."""
        while not stop.is_set():
            try:
                await self.deliver_due()
            except Exception:  # the store away for a moment: the schedule is still there
                log.exception("webhook.dispatch_failed")
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            _, pending = await asyncio.wait(
                waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def deliver_due(self) -> int:
        """Tries every message due now that this process claims; how many it tried."""
        now = self.clock()
        tried = 0
        for message in await self.store.due(now, self.batch):
            if await self.store.claim(message, now + self.lease, now):
                await self._try(message)
                tried += 1
        return tried

    async def _try(self, message: WebhookMessage) -> None:
        attempts = message.attempts + 1
        registration = await self.store.registration(message.district_code)
        try:
            if registration is None:
                raise PermanentFailure("the office no longer has a webhook")
            now = self.clock()
            await self.sender.send(
                registration.url,
                message.message_id,
                message.body,
                registration.signing_secrets(now),
                now,
            )
        except PermanentFailure as exc:
            await self._give_up(message, attempts, str(exc))
            return
        except TemporaryFailure as exc:
            due = self.retry.next_try(message.first_due, attempts, self.clock())
            if due is None:
                hours = self.retry.window / timedelta(hours=1)
                await self._give_up(message, attempts, f"{exc}; gave up after {hours:g} h")
            else:
                log.info("webhook.retry", attempts=attempts, error=str(exc), due=due.isoformat())
                await self.store.retry_at(message.message_id, due, attempts, str(exc))
            return
        await self.store.delivered(message.message_id, attempts, self.clock())
        DELIVERIES.labels(WEBHOOK_CHANNEL, "delivered").inc()
        log.info("webhook.delivered", webhook_event=message.event_name, attempts=attempts)

    async def _give_up(self, message: WebhookMessage, attempts: int, error: str) -> None:
        reason = f"{WEBHOOK_CHANNEL}: {error} ({attempts} attempts)"
        events = message.failure_events(reason)
        log.warning(
            "webhook.failed",
            webhook_event=message.event_name,
            error=reason,
            announced=[e.name for e in events],
        )
        DELIVERIES.labels(WEBHOOK_CHANNEL, "failed").inc()
        await self.store.failed(
            message.message_id,
            attempts,
            reason,
            announce(*events, correlation_id=message.request_id),
        )
