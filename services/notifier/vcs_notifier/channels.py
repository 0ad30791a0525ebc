"""The one interface every delivery channel implements (mail today; webhook and LINE beside it).

A handler decides *what* an office is told (a :class:`Notice`); a :class:`Channel`
decides *how* it reaches the office. Each channel raises :class:`PermanentFailure`
when retrying cannot help (a bad address, a refusal, a message that cannot be
built) and :class:`TemporaryFailure` when a later try may work (the relay down, a
4xx, a timeout); the handlers retry the temporary ones with backoff and record
every failure as ``credentials.failed`` with its reason, never as a silent dead
letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from vcs_notifier.domain import Delivery, MailKind, Rejection
from vcs_shared.credentials import MeetingCredentials


@dataclass(frozen=True, slots=True)
class Notice:
    """What one office is to be told about one request: the kind of message, the delivery
    (contact, meeting, office, the booking when there is one) and, for the messages that carry
    them, the opened credentials or the rejection."""

    kind: MailKind
    delivery: Delivery
    credentials: MeetingCredentials | None = None
    rejection: Rejection | None = None
    moved_from: str | None = None
    """The Meeting ID an operator moved the booking from (the credentials are the new room's)."""
    lead: timedelta | None = None
    """How long before the meeting a reminder goes."""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When it is sent (a mail's ``Date``)."""

    @property
    def request_id(self) -> str:
        return self.delivery.request_id


class Channel(Protocol):
    """One way of reaching an office (``email``, ``webhook``, ``line``)."""

    @property
    def name(self) -> str:
        """The channel's name as events and deliveries carry it."""
        ...

    async def send(self, notice: Notice) -> None:
        """Delivers ``notice``; :class:`PermanentFailure` or :class:`TemporaryFailure` if not."""
        ...


class DeliveryFailure(Exception):
    """A channel could not deliver a notice; the message is the reason, on one line."""


class PermanentFailure(DeliveryFailure):
    """Retrying cannot help: the notice is recorded as failed at once."""


class TemporaryFailure(DeliveryFailure):
    """A later try may work: the notice is sent again with backoff, then recorded as failed."""
