"""Transactional outbox: an event is stored inside the document whose change it announces.

A service writes its state change and the events announcing it in one
single-document write (the embedded store does not isolate multi-document
transactions), then publishes them with confirms and marks them sent. If the
process dies or the broker is down in between, the relay's sweep finds the
document and publishes what is unsent; consumers deduplicate by event id, so
publishing an entry twice is harmless, losing one is impossible.

Stored shape, in the owning document:

* ``outbox``: the entries ``{"id", "routing_key", "body", "sent", "created_at"}``;
* ``outbox_pending``: true while any entry is unsent (the sweep's indexed query);
* ``outbox_count``: the number of entries, the compare-and-set guard of every
  outbox write, so marking entries sent never overwrites an entry added
  meanwhile.

Only top-level scalar fields are queried: the embedded store answers queries on
an indexed array path (``outbox.sent``) wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pymongo.asynchronous.collection import AsyncCollection

from vcs_shared.broker import EventPublisher
from vcs_shared.envelope import OutgoingMessage

log = structlog.get_logger(__name__)

Document = dict[str, Any]


def outbox_fields(existing: Sequence[Document], messages: Iterable[OutgoingMessage]) -> Document:
    """The fields to write, in the same write as the change the messages announce."""
    now = datetime.now(UTC)
    entries = [*existing, *({**m.model_dump(), "sent": False, "created_at": now} for m in messages)]
    pending = any(not entry["sent"] for entry in entries)
    return {"outbox": entries, "outbox_pending": pending, "outbox_count": len(entries)}


async def ensure_outbox_index(collection: AsyncCollection[Document]) -> None:
    await collection.create_index("outbox_pending")


class OutboxRelay:
    """Publishes the outbox entries of one collection: at once after a write, and by sweeping.

    While publishing fails the sweep backs off, but only to ``max_backoff``: a publish
    attempt while the broker is away fails at once without touching the network, so a
    short ceiling costs nothing and bounds how long the backlog waits once it is back.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        publisher: EventPublisher,
        *,
        sweep_interval: float = 1.0,
        stale_after: float = 3.0,
        max_backoff: float = 5.0,
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

    async def publish_now(self, doc_id: str, outbox: Sequence[Document]) -> bool:
        """Fast path right after a write of ``outbox``; the sweep retries what fails.

        Never raises: the write it follows is durable, so the caller has succeeded
        (an intake answers ``202``) whatever happens to the broker or the store now.
        """
        try:
            return await self._publish(doc_id, outbox, cutoff=None)
        except Exception as exc:  # e.g. the store went away before the entries were marked sent
            log.warning("outbox.publish_now_failed", document=doc_id, error=repr(exc))
            return False

    async def run(self, stop: asyncio.Event) -> None:
        """Sweeps for unsent entries until ``stop`` is set, backing off while publishing fails."""
        delay = self._sweep_interval
        while not stop.is_set():
            try:
                ok = await self.sweep()
            except Exception as exc:  # the sweep must outlive any outage, whatever it raises
                log.warning("outbox.sweep_failed", error=repr(exc))
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
        cursor = self._collection.find({"outbox_pending": True}, {"outbox": 1}).limit(500)
        async for doc in cursor:
            if not await self._publish(doc["_id"], doc.get("outbox", []), cutoff=cutoff):
                return False
        return True

    async def _publish(
        self, doc_id: str, outbox: Sequence[Document], *, cutoff: datetime | None
    ) -> bool:
        marked = [dict(entry) for entry in outbox]
        published = False
        ok = True
        for entry in marked:
            if entry["sent"] or (cutoff is not None and _aware(entry["created_at"]) > cutoff):
                continue
            message = OutgoingMessage(
                id=entry["id"], routing_key=entry["routing_key"], body=entry["body"]
            )
            try:
                await self._publisher.publish(message)
            except Exception as exc:  # any broker failure leaves the entry for the sweep
                self._healthy = False
                log.warning("outbox.publish_failed", event_id=message.id, error=repr(exc))
                ok = False
                break
            entry["sent"] = True
            published = True
        if published:
            self._healthy = True
            await self._collection.update_one(
                {"_id": doc_id, "outbox_count": len(marked)},
                {
                    "$set": {
                        "outbox": marked,
                        "outbox_pending": not all(e["sent"] for e in marked),
                    }
                },
            )
        return ok


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
