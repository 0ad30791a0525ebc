"""Transactional outbox: an event is stored inside the document whose change it announces.

A service writes its state change and the events announcing it in one
single-document write (the embedded store does not isolate multi-document
transactions), then publishes them with confirms and marks each one sent.
If the process dies or the broker is down in between, the relay's sweep finds
the unsent entries and publishes them later; consumers deduplicate by event id,
so publishing an entry twice is harmless, losing one is impossible.

An outbox entry is a sub-document of the owning document's ``outbox`` array:
``{"id", "routing_key", "body", "sent", "created_at"}``. Entries are only ever
added together with the state change they belong to, and only ``sent`` changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pymongo.asynchronous.collection import AsyncCollection

from vcs_shared.broker import TRANSIENT_ERRORS, EventPublisher
from vcs_shared.envelope import OutgoingMessage

log = structlog.get_logger(__name__)

Document = dict[str, Any]


def outbox_entries(messages: Iterable[OutgoingMessage]) -> list[Document]:
    """The sub-documents to store, in the same write as the change they announce."""
    now = datetime.now(UTC)
    return [{**m.model_dump(), "sent": False, "created_at": now} for m in messages]


async def ensure_outbox_index(collection: AsyncCollection[Document]) -> None:
    await collection.create_index("outbox.sent")


class OutboxRelay:
    """Publishes the outbox entries of one collection: at once after a write, and by sweeping."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        publisher: EventPublisher,
        *,
        sweep_interval: float = 1.0,
        stale_after: float = 3.0,
        max_backoff: float = 15.0,
    ) -> None:
        self._collection = collection
        self._publisher = publisher
        self._sweep_interval = sweep_interval
        self._stale_after = timedelta(seconds=stale_after)
        self._max_backoff = max_backoff
        self._healthy = True

    @property
    def healthy(self) -> bool:
        """False while the last publish attempt failed (broker down); reported by health checks."""
        return self._healthy

    async def publish_now(self, doc_id: str, entries: Iterable[Document]) -> bool:
        """Fast path right after the write; the sweep retries failures. True if all were sent."""
        sent_all = True
        for entry in entries:
            sent_all = await self._publish_entry(doc_id, entry) and sent_all
        return sent_all

    async def run(self, stop: asyncio.Event) -> None:
        """Sweeps for unsent entries until ``stop`` is set, backing off while publishing fails."""
        delay = self._sweep_interval
        while not stop.is_set():
            try:
                ok = await self.sweep()
            except TRANSIENT_ERRORS as exc:
                log.warning("outbox.sweep_failed", error=str(exc))
                ok = False
            delay = (
                self._sweep_interval
                if ok
                else min(self._max_backoff, delay * 2) * random.uniform(0.8, 1.2)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def sweep(self, *, include_fresh: bool = False) -> bool:
        """Publishes every unsent entry older than ``stale_after``; False if any publish failed."""
        cutoff = datetime.now(UTC) - (timedelta(0) if include_fresh else self._stale_after)
        ok = True
        cursor = self._collection.find({"outbox.sent": False}, {"outbox": 1}).limit(500)
        async for doc in cursor:
            for entry in doc.get("outbox", []):
                if entry["sent"] or _aware(entry["created_at"]) > cutoff:
                    continue
                ok = await self._publish_entry(doc["_id"], entry) and ok
                if not ok:
                    return False
        return ok

    async def _publish_entry(self, doc_id: str, entry: Document) -> bool:
        message = OutgoingMessage(
            id=entry["id"], routing_key=entry["routing_key"], body=entry["body"]
        )
        try:
            await self._publisher.publish(message)
        except Exception as exc:  # any broker failure leaves the entry for the sweep
            self._healthy = False
            log.warning("outbox.publish_failed", event_id=message.id, error=repr(exc))
            return False
        self._healthy = True
        await self._collection.update_one(
            {"_id": doc_id, "outbox.id": message.id}, {"$set": {"outbox.$.sent": True}}
        )
        return True


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
