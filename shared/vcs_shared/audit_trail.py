"""A service's trail of audit entries for actions that change no document of their own.

A sign-in, an invitation, a pool reload, a token issued on the command line: none of these
is one document whose outbox could carry the entry, so each entry is its own small document
in the service's ``audit_outbox`` collection, written with its entry through the same
:class:`~vcs_shared.outbox.Outbox` (one write, then published on ``<ns>.audit``; the relay's
sweep retries). A ``vcs`` command writes with the offline publisher: the intake's relay,
which sweeps the same collection, publishes it. Actions that do change a document (a
cancel) put the entry in that document's outbox instead (``announce(..., audit=...)``).
"""

from __future__ import annotations

import uuid

from pymongo.asynchronous.database import AsyncDatabase

from vcs_shared.audit import AuditRecorded
from vcs_shared.broker import EventPublisher
from vcs_shared.outbox import OFFLINE, Announcement, Outbox, OutboxRelay
from vcs_shared.store import Document

COLLECTION = "audit_outbox"


class AuditTrail:
    """Records audit entries of one service (one outbox document each)."""

    def __init__(
        self, db: AsyncDatabase[Document], *, source: str, publisher: EventPublisher = OFFLINE
    ) -> None:
        self._outbox = Outbox(db[COLLECTION], source=source, publisher=publisher)

    @property
    def relay(self) -> OutboxRelay:
        return self._outbox.relay

    async def ensure_indexes(self) -> None:
        await self._outbox.ensure_index()

    async def record(self, entry: AuditRecorded) -> None:
        """Stores the entry and publishes it (or leaves it to the relay's sweep)."""
        document = {
            "_id": uuid.uuid4().hex,
            "action": entry.action.value,
            "at_ms": int(entry.at.timestamp() * 1000),
        }
        await self._outbox.insert(document, Announcement(audit=(entry,)))
