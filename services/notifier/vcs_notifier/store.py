"""The notifier's own collection: one ``deliveries`` document per request.

It holds the contact learned from ``request.submitted`` and, once sent, each
mail's outcome with the events announcing it (written through an
:class:`~vcs_shared.outbox.Outbox`). The document mapping of a
:class:`~vcs_notifier.domain.Delivery` is at the end of this module.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_notifier.domain import Delivery, MailKind, MailOutcome
from vcs_shared.broker import EventPublisher
from vcs_shared.events import Contact
from vcs_shared.outbox import OFFLINE, SILENT, Announcement, Change, Outbox
from vcs_shared.store import Document, epoch_ms

SOURCE = "notifier"


class DeliveryStore(Protocol):
    async def remember(self, delivery: Delivery) -> None: ...
    async def delivery(self, request_id: str) -> Delivery | None: ...
    async def claim(
        self, request_id: str, kind: MailKind, lease: timedelta, *, now: datetime | None = None
    ) -> bool: ...
    async def record_outcome(
        self, request_id: str, outcome: MailOutcome, announcement: Announcement = SILENT
    ) -> bool: ...


class MongoDeliveryStore:
    def __init__(self, db: AsyncDatabase[Document], publisher: EventPublisher = OFFLINE) -> None:
        self.deliveries = db["deliveries"]
        self._outbox = Outbox(self.deliveries, source=SOURCE, publisher=publisher)
        self.relay = self._outbox.relay

    async def ensure_indexes(self) -> None:
        await self._outbox.ensure_index()

    async def remember(self, delivery: Delivery) -> None:
        """Keeps the contact of a request; the first copy of its event wins."""
        with contextlib.suppress(DuplicateKeyError):
            await self._outbox.insert(delivery_to_document(delivery))

    async def delivery(self, request_id: str) -> Delivery | None:
        document = await self.deliveries.find_one({"_id": request_id})
        return None if document is None else delivery_from_document(document)

    async def claim(
        self, request_id: str, kind: MailKind, lease: timedelta, *, now: datetime | None = None
    ) -> bool:
        """The right to send one kind of mail for a request: one handler at a time holds it,
        so two copies of an event handled at once send one mail. It is a lease: a handler that
        died holding it is replaced once ``lease`` has passed.

        Two plain compare-and-set writes, the first for a mail never claimed, the second for
        a lease run out: nx-27017 matches an update filter wrongly when an ``$or`` holds an
        ``$exists``. The claim time is epoch milliseconds (:func:`epoch_ms`)."""
        now = now or datetime.now(UTC)
        claimed_ms = f"{kind}_claimed_ms"
        for held in ({"$exists": False}, {"$lt": epoch_ms(now - lease)}):
            result = await self.deliveries.update_one(
                {"_id": request_id, kind: {"$exists": False}, claimed_ms: held},
                {"$set": {claimed_ms: epoch_ms(now)}},
            )
            if result.modified_count == 1:
                return True
        return False

    async def record_outcome(
        self, request_id: str, outcome: MailOutcome, announcement: Announcement = SILENT
    ) -> bool:
        """Records the outcome of one kind of mail once, with its events (then published);
        False if it was recorded before. The other kind of mail recorded meanwhile (a release
        racing an assignment) makes the outbox look again, so neither outcome is lost."""
        kind = outcome.kind

        def change(current: Document) -> Change | None:
            if kind in current:
                return None
            return Change({kind: outcome_to_document(outcome)}, guard={kind: {"$exists": False}})

        projection = {"outbox": 1, "outbox_count": 1, kind: 1}
        changed = await self._outbox.update(request_id, change, announcement, projection=projection)
        return changed is not None and changed.written


def delivery_to_document(delivery: Delivery) -> Document:
    document: Document = {
        "_id": delivery.request_id,
        "contact": delivery.contact.model_dump(),
        "title": delivery.title,
        "province_code": delivery.province_code,
        "district_code": delivery.district_code,
        "created_at": delivery.created_at,
    }
    document.update({o.kind: outcome_to_document(o) for o in delivery.outcomes.values()})
    return document


def delivery_from_document(document: Document) -> Delivery:
    return Delivery(
        request_id=document["_id"],
        contact=Contact.model_validate(document["contact"]),
        title=document["title"],
        province_code=document["province_code"],
        district_code=document["district_code"],
        created_at=document["created_at"],
        outcomes={
            kind: outcome_from_document(kind, document[kind])
            for kind in MailKind
            if kind in document
        },
    )


def outcome_to_document(outcome: MailOutcome) -> Document:
    document: Document = {"state": outcome.state}
    if outcome.channel is not None:
        document["channel"] = outcome.channel
    document["at"] = outcome.at
    if outcome.error is not None:
        document["error"] = outcome.error
    return document


def outcome_from_document(kind: MailKind, document: Document) -> MailOutcome:
    return MailOutcome(
        kind=kind,
        state=document["state"],
        at=document["at"],
        channel=document.get("channel"),
        error=document.get("error"),
    )
