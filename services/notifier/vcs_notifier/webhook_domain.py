"""Webhook registrations and messages as the notifier keeps them, and the retry rule; no I/O.

A message is retried with exponential backoff and full jitter (each wait a random
part of a doubling ceiling, so many messages failing together do not come back
together) until its deadline, ``VCS_WEBHOOK_RETRY_HOURS`` after it was first
due; then it has failed for good. A rotated secret stays valid beside the new
one for :data:`ROTATION_OVERLAP`, so a receiver can switch without losing a
message.

The loop rule (:meth:`WebhookMessage.failure_events`): every event of an office's requests
goes to its webhook, ``credentials.failed`` among them, so a receiver that is down must not
start a chain (a credentials.failed about the dead webhook, forwarded to it, failing, a new
credentials.failed...). Only the message carrying the credentials (``room.assigned``,
``room.reassigned``) announces anything when it fails for good: ``credentials.failed``, and
the request is ``delivery_failed``. Failing to forward any other event, ``credentials.failed``
itself included, is recorded on the message (state, attempts, error), logged and counted for
operators, and announces nothing, so one dead webhook ends every chain after one step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal

from vcs_shared.events import CredentialsFailed, Event, RoomAssigned, RoomReassigned

CARRYING_CREDENTIALS = (RoomAssigned, RoomReassigned)
"""The events whose webhook message carries the credentials (opened for the office's
receiver): the only ones whose failing for good is ``credentials.failed``."""
WEBHOOK_CHANNEL: Final = "webhook"

ROTATION_OVERLAP = timedelta(hours=24)
"""How long the secret before a rotation still signs (both signatures are sent)."""


@dataclass(frozen=True, slots=True)
class SigningSecret:
    secret: str
    until: datetime | None = None
    """When it stops signing (None: the current secret)."""

    def valid_at(self, moment: datetime) -> bool:
        return self.until is None or moment < self.until


@dataclass(frozen=True, slots=True)
class WebhookRegistration:
    """An office's webhook: where its events go and the secrets that sign them."""

    district_code: str
    province_code: str
    url: str
    secrets: tuple[SigningSecret, ...]
    updated_at: datetime

    def signing_secrets(self, moment: datetime) -> list[str]:
        """The secrets that sign a message sent at ``moment``: the current one first."""
        return [s.secret for s in self.secrets if s.valid_at(moment)]

    def rotated(self, url: str, secret: str, at: datetime) -> WebhookRegistration:
        """The registration with a new current ``secret`` (and ``url``); the one before stays
        valid for :data:`ROTATION_OVERLAP`, older ones that expired are dropped."""
        kept = [
            replace(s, until=s.until or at + ROTATION_OVERLAP)
            for s in self.secrets
            if s.valid_at(at)
        ]
        return replace(self, url=url, secrets=(SigningSecret(secret), *kept[:1]), updated_at=at)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed message again, and when to give up."""

    window: timedelta
    initial: timedelta = timedelta(seconds=10)
    ceiling: timedelta = timedelta(hours=1)
    jitter: Callable[[], float] = random.random

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed try: a random part (at least half) of
        ``initial * 2**(attempts-1)``, never above ``ceiling``."""
        bound = min(self.initial * (1 << min(max(attempts - 1, 0), 40)), self.ceiling)
        return bound * (0.5 + 0.5 * self.jitter())

    def next_try(self, first_due: datetime, attempts: int, now: datetime) -> datetime | None:
        """When to try again after the ``attempts``-th failure, None once past the window."""
        due = now + self.delay(attempts)
        return None if due > first_due + self.window else due


MessageState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One event to deliver to one office's webhook."""

    message_id: str
    """The CloudEvent id: the ``webhook-id`` on every try."""
    request_id: str
    province_code: str
    district_code: str
    event_name: str
    body: str
    first_due: datetime
    state: MessageState = "pending"
    attempts: int = 0
    error: str | None = None
    carries_credentials: bool = False
    """Whether this message is the credentials' (:func:`carries_credentials`): failing for
    good is then ``credentials.failed``."""

    def failure_events(self, error: str) -> tuple[Event, ...]:
        """What this message announces once it failed for good with ``error`` (the loop rule
        above): ``credentials.failed`` for the credentials' message, nothing for any other."""
        if not self.carries_credentials:
            return ()
        failed = CredentialsFailed(
            request_id=self.request_id,
            province_code=self.province_code,
            district_code=self.district_code,
            channel=WEBHOOK_CHANNEL,
            error=error,
        )
        return (failed,)


def carries_credentials(event: Event) -> bool:
    """Whether ``event``'s webhook message is the credentials' (see :meth:`failure_events`)."""
    return isinstance(event, CARRYING_CREDENTIALS)
