"""The notifier's office channel collections: ``webhooks`` (one registration per office),
``webhook_messages`` (one per event to deliver: the durable retry schedule) and
``line_groups`` (the LINE group of each office that registered one).

The schedule lives in the store, not in timers: ``due_ms`` (epoch milliseconds,
single-field index; null once a message is settled) is when a message is next
to be tried, and whichever notifier process claims it first (a compare-and-set
moving ``due_ms`` a lease ahead) tries it; a process that dies holding it leaves
it due again when the lease runs out. Signing secrets and message bodies (the
credentials' message carries the passcode) are kept sealed with the credentials
keys. A message failing for good is written with its ``credentials.failed``
through the collection's :class:`~vcs_shared.outbox.Outbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_notifier.webhook_domain import SigningSecret, WebhookMessage, WebhookRegistration
from vcs_shared.broker import EventPublisher
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.outbox import OFFLINE, SILENT, Announcement, Change, Outbox
from vcs_shared.store import Document, epoch_ms

SOURCE = "notifier"


WITH_WEBHOOK_MAX_AGE = 2.0
"""Seconds the copy of which offices have a webhook answers for (see
:meth:`MongoWebhookStore.has_webhook`)."""


class WebhookStore(Protocol):
    async def registration(self, district_code: str) -> WebhookRegistration | None: ...
    async def has_webhook(self, district_code: str) -> bool: ...
    async def register(
        self, registration: WebhookRegistration, announcement: Announcement = SILENT
    ) -> None: ...
    async def unregister(self, district_code: str, announcement: Announcement = SILENT) -> bool: ...
    async def add(self, message: WebhookMessage) -> bool: ...
    async def due(self, now: datetime, limit: int) -> list[WebhookMessage]: ...
    async def claim(self, message: WebhookMessage, until: datetime, now: datetime) -> bool: ...
    async def delivered(self, message_id: str, attempts: int, at: datetime) -> None: ...
    async def retry_at(self, message_id: str, due: datetime, attempts: int, error: str) -> None: ...
    async def failed(
        self, message_id: str, attempts: int, error: str, announcement: Announcement
    ) -> None: ...
    async def message(self, message_id: str) -> WebhookMessage | None: ...
    async def revive(self, request_id: str, now: datetime) -> int: ...


class MongoWebhookStore:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        sealer: CredentialsSealer,
        publisher: EventPublisher = OFFLINE,
        *,
        max_age: float = WITH_WEBHOOK_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registrations = db["webhooks"]
        self.messages = db["webhook_messages"]
        self._sealer = sealer
        self._outbox = Outbox(self.messages, source=SOURCE, publisher=publisher)
        self._settings = Outbox(self.registrations, source=SOURCE, publisher=publisher)
        self.relay = self._outbox.relay
        self.settings_relay = self._settings.relay
        """Publishes the audit entries of registrations (run beside :attr:`relay`)."""
        self._max_age = max_age
        self._clock = clock
        self._with_webhook: frozenset[str] = frozenset()
        self._read_at: float | None = None
        """When the read that gave ``_with_webhook`` started (None: not read yet, or this
        process changed a registration since)."""
        self._reading = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        await self._outbox.ensure_index()
        await self._settings.ensure_index()
        await self.messages.create_index("due_ms")
        await self.messages.create_index("request_id")

    async def registration(self, district_code: str) -> WebhookRegistration | None:
        document = await self.registrations.find_one({"_id": district_code})
        if document is None or document.get("url") is None:  # never, or removed
            return None
        return self._registration_from(document)

    async def has_webhook(self, district_code: str) -> bool:
        """Whether the office has a webhook: the question asked for every event handled. Most
        offices have none, so "none" is answered from a copy of the set of offices with one
        (their ids only), read again when the copy is ``max_age`` seconds old, one read
        serving every event meanwhile; "one" is confirmed by reading the registration itself,
        so a webhook removed meanwhile is never scheduled for (its message would fail for
        good). The trade-off: a registration made through another notifier process counts
        within ``max_age`` seconds, and events this process handles before then are not sent
        to the new webhook; one made through this process counts at once."""
        if not self._fresh():
            async with self._reading:
                if not self._fresh():
                    started = self._clock()
                    cursor = self.registrations.find({}, {"url": 1})
                    self._with_webhook = frozenset(
                        [str(d["_id"]) async for d in cursor if d.get("url") is not None]
                    )
                    self._read_at = started
        if district_code not in self._with_webhook:
            return False
        return await self.registration(district_code) is not None

    def _fresh(self) -> bool:
        return self._read_at is not None and self._clock() - self._read_at < self._max_age

    async def register(
        self, registration: WebhookRegistration, announcement: Announcement = SILENT
    ) -> None:
        """Writes the office's registration whole (the last PUT wins), with its audit entry."""
        fields = self._registration_to(registration)
        try:
            await upsert(self._settings, registration.district_code, fields, announcement)
        finally:
            self._read_at = None  # this process sees its own change at once

    async def unregister(self, district_code: str, announcement: Announcement = SILENT) -> bool:
        """Removes the office's webhook (its secrets too); False if it had none."""
        if await self.registration(district_code) is None:
            return False
        fields: Document = {"url": None, "secrets": []}
        try:
            await upsert(self._settings, district_code, fields, announcement)
        finally:
            self._read_at = None
        return True

    async def add(self, message: WebhookMessage) -> bool:
        """Schedules ``message`` once: False when this event was scheduled before (a redelivered
        event)."""
        with contextlib.suppress(DuplicateKeyError):
            await self._outbox.insert(self._message_to(message))
            return True
        return False

    async def due(self, now: datetime, limit: int) -> list[WebhookMessage]:
        """Messages due at ``now``, the longest waiting first (one indexed range query)."""
        cursor = self.messages.find({"due_ms": {"$lte": epoch_ms(now)}}).sort("due_ms", 1)
        return [self._message_from(d) async for d in cursor.limit(limit)]

    async def claim(self, message: WebhookMessage, until: datetime, now: datetime) -> bool:
        """The right to try ``message`` now, held until ``until`` (then it is due again)."""
        document = await self.messages.find_one_and_update(
            {"_id": message.message_id, "due_ms": {"$lte": epoch_ms(now)}},
            {"$set": {"due_ms": epoch_ms(until)}},
            return_document=ReturnDocument.AFTER,
        )
        return document is not None

    async def delivered(self, message_id: str, attempts: int, at: datetime) -> None:
        settled = {"state": "delivered", "due_ms": None, "attempts": attempts}
        await self.messages.update_one(
            {"_id": message_id}, {"$set": {**settled, "settled_ms": epoch_ms(at)}}
        )

    async def retry_at(self, message_id: str, due: datetime, attempts: int, error: str) -> None:
        await self.messages.update_one(
            {"_id": message_id},
            {"$set": {"due_ms": epoch_ms(due), "attempts": attempts, "error": error}},
        )

    async def failed(
        self, message_id: str, attempts: int, error: str, announcement: Announcement = SILENT
    ) -> None:
        """The message failed for good, written once with what it announces."""

        def change(current: Document) -> Change | None:
            if current.get("state") != "pending":
                return None
            fields = {"state": "failed", "due_ms": None, "attempts": attempts, "error": error}
            return Change(fields, guard={"state": "pending"})

        projection = {"outbox": 1, "outbox_count": 1, "state": 1}
        await self._outbox.update(message_id, change, announcement, projection=projection)

    async def revive(self, request_id: str, now: datetime) -> int:
        """The request's messages that failed for good, due again at ``now`` with a fresh
        window (an operator's redelivery); how many."""
        revived = 0
        async for document in self.messages.find({"request_id": request_id}, {"state": 1}):
            if document.get("state") != "failed":
                continue
            fresh = {"state": "pending", "attempts": 0, "due_ms": epoch_ms(now)}
            result = await self.messages.update_one(
                {"_id": document["_id"], "state": "failed"},
                {"$set": {**fresh, "first_due_ms": epoch_ms(now)}},
            )
            revived += result.modified_count
        return revived

    async def message(self, message_id: str) -> WebhookMessage | None:
        document = await self.messages.find_one({"_id": message_id})
        return None if document is None else self._message_from(document)

    def _registration_to(self, registration: WebhookRegistration) -> Document:
        return {
            "province_code": registration.province_code,
            "url": registration.url,
            "secrets": [
                {
                    "sealed": self._sealer.seal_text(s.secret),
                    "until_ms": None if s.until is None else epoch_ms(s.until),
                }
                for s in registration.secrets
            ],
            "updated_ms": epoch_ms(registration.updated_at),
        }

    def _registration_from(self, document: Document) -> WebhookRegistration:
        return WebhookRegistration(
            district_code=document["_id"],
            province_code=document["province_code"],
            url=document["url"],
            secrets=tuple(
                SigningSecret(
                    self._sealer.open_text(s["sealed"]),
                    None if s.get("until_ms") is None else _from_ms(s["until_ms"]),
                )
                for s in document["secrets"]
            ),
            updated_at=_from_ms(document["updated_ms"]),
        )

    def _message_to(self, message: WebhookMessage) -> Document:
        return {
            "_id": message.message_id,
            "request_id": message.request_id,
            "province_code": message.province_code,
            "district_code": message.district_code,
            "event": message.event_name,
            "body_sealed": self._sealer.seal_text(message.body),
            "first_due_ms": epoch_ms(message.first_due),
            "due_ms": epoch_ms(message.first_due),
            "state": message.state,
            "attempts": message.attempts,
            "carries_credentials": message.carries_credentials,
        }

    def _message_from(self, document: Document) -> WebhookMessage:
        return WebhookMessage(
            message_id=document["_id"],
            request_id=document["request_id"],
            province_code=document["province_code"],
            district_code=document["district_code"],
            event_name=document["event"],
            body=self._sealer.open_text(document["body_sealed"]),
            first_due=_from_ms(document["first_due_ms"]),
            state=document["state"],
            attempts=int(document.get("attempts", 0)),
            error=document.get("error"),
            carries_credentials=bool(document.get("carries_credentials", False)),
        )


class MongoLineGroups:
    """``line_groups``: the LINE group each office registered (one document per office)."""

    def __init__(self, db: AsyncDatabase[Document], publisher: EventPublisher = OFFLINE) -> None:
        self.groups = db["line_groups"]
        self._outbox = Outbox(self.groups, source=SOURCE, publisher=publisher)
        self.relay = self._outbox.relay

    async def ensure_indexes(self) -> None:
        await self._outbox.ensure_index()

    async def line_group(self, district_code: str) -> str | None:
        document = await self.groups.find_one({"_id": district_code})
        group = None if document is None else document.get("group_id")
        return None if group is None else str(group)

    async def set_line_group(
        self, district_code: str, group_id: str | None, announcement: Announcement = SILENT
    ) -> None:
        """Registers the office's group (None: LINE messages stop), with its audit entry."""
        await upsert(self._outbox, district_code, {"group_id": group_id}, announcement)


async def upsert(outbox: Outbox, doc_id: str, fields: Document, announcement: Announcement) -> None:
    """Sets ``fields`` on the document (made if missing) with what the change announces."""
    if await outbox.update(doc_id, lambda _: Change(fields), announcement) is not None:
        return
    try:
        await outbox.insert({"_id": doc_id, **fields}, announcement)
    except DuplicateKeyError:  # made meanwhile by another call: change it instead
        await outbox.update(doc_id, lambda _: Change(fields), announcement)


def _from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
