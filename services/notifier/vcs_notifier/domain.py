"""A delivery as the notifier keeps it: who to write to, and which mails went out; no I/O here.

The contact comes from ``request.submitted`` (event-carried state). Each kind of
mail (:class:`MailKind`) is sent at most once per request: a recorded outcome
is final, whatever copies of its event arrive later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from vcs_shared.events import Contact, RequestSubmitted


class MailKind(StrEnum):
    assigned = "assigned"
    """The credentials, after room.assigned."""
    released = "released"
    """The notice that the room is no longer the office's, after room.released."""


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """How one kind of mail went: sent, or failed for good with ``error``."""

    kind: MailKind
    state: Literal["delivered", "failed"]
    at: datetime
    channel: Literal["email"] | None = None
    error: str | None = None

    @classmethod
    def of(cls, kind: MailKind, error: str | None, *, at: datetime) -> MailOutcome:
        """The outcome of an e-mail that ended with ``error`` (None: delivered)."""
        return cls(kind, "delivered" if error is None else "failed", at, "email", error)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the notifier knows of one request: its contact and title, and the mails recorded."""

    request_id: str
    contact: Contact
    title: str
    province_code: str
    district_code: str
    created_at: datetime
    outcomes: Mapping[MailKind, MailOutcome] = field(default_factory=dict)

    @classmethod
    def of(cls, event: RequestSubmitted, *, at: datetime) -> Delivery:
        return cls(**event.subject(), contact=event.contact, title=event.title, created_at=at)

    def recorded(self, kind: MailKind) -> bool:
        """Whether that mail's outcome is recorded: then it is never sent again."""
        return kind in self.outcomes
