"""Where each event sits in the feed stream: CloudEvent id -> stream offset, in the desk's store.

A browser that reconnects sends only the id of the last event it got
(``Last-Event-ID``, which the contract fixes to the CloudEvent id); resuming
without a gap needs that event's offset in the stream. The desk records it as
it reads:

* :class:`FeedIndexer` — one reader of the whole stream per desk process, from
  where the index ends (``last offset + 1``, or the oldest event kept when the
  index is empty), so after a restart, or a broker outage, it first catches up on
  what it missed. It writes in batches (one ``insert_many`` per up to
  :data:`BATCH_SIZE` events or :data:`BATCH_WAIT` seconds): store commands per
  request matter on the embedded store (issue 18).
* :class:`FeedIndex` — the collection ``feed_index`` (``_id`` = event id, so
  several desk processes recording the same event keep one entry, the first
  offset an event was published at); entries expire with the stream's own
  retention (:data:`~vcs_shared.topology.FEED_RETENTION`).

An operator may reconnect before the indexer has written the event the browser
just showed: :meth:`FeedIndexer.settled` lets the lookup wait until everything
the indexer has received is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustConnection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from vcs_desk.feed import read_event
from vcs_desk.feed_stream import Position, StreamEnded, StreamMessage, StreamReader
from vcs_shared.store import Document, raise_unless_duplicates
from vcs_shared.topology import FEED_RETENTION

log = structlog.get_logger(__name__)

BATCH_SIZE = 500
BATCH_WAIT = 0.5
"""Seconds a batch of index entries waits for more after its first."""
RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class IndexEntry:
    event_id: str
    offset: int


class FeedIndex:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._entries = database["feed_index"]

    async def ensure_indexes(self) -> None:
        await self._entries.create_index("offset")
        await self._entries.create_index(
            "at", expireAfterSeconds=int(FEED_RETENTION.total_seconds())
        )

    async def offset_of(self, event_id: str) -> int | None:
        document = await self._entries.find_one({"_id": event_id}, {"offset": 1})
        return int(document["offset"]) if document else None

    async def last_offset(self) -> int | None:
        """The highest offset recorded, or None for an empty index."""
        document = await self._entries.find_one({}, {"offset": 1}, sort=[("offset", -1)])
        return int(document["offset"]) if document else None

    async def record(self, entries: Sequence[IndexEntry]) -> None:
        """One write for the whole batch; an event already recorded keeps its first offset."""
        if not entries:
            return
        at = datetime.now(UTC)
        documents = [{"_id": e.event_id, "offset": e.offset, "at": at} for e in entries]
        try:
            await self._entries.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            raise_unless_duplicates(exc)


class FeedIndexer:
    """Reads the whole stream into the index, batch by batch, until stopped."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        stream: str,
        index: FeedIndex,
        *,
        batch_size: int = BATCH_SIZE,
        batch_wait: float = BATCH_WAIT,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self._index = index
        self._batch_size = batch_size
        self._batch_wait = batch_wait
        self._reader: StreamReader | None = None
        self._unrecorded = 0
        self._recorded = asyncio.Condition()

    async def run(self) -> None:
        """Until cancelled: (re)attach after the last recorded offset and record what comes."""
        after = await self._last_recorded()
        while True:
            start: Position = after + 1 if after is not None else "first"
            try:
                self._reader = await StreamReader.open(
                    self._connection, self._stream, start, prefetch=self._batch_size
                )
                async with self._reader:
                    log.info("feed.indexing", start=start)
                    while True:
                        after = await self._record_next_batch(self._reader) or after
            except StreamEnded:
                pass
            except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
                log.warning("feed.indexer_detached", error=repr(exc))
            finally:
                self._reader = None
            await asyncio.sleep(RETRY_SECONDS)  # a reconnecting broker: try again shortly
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await self._connection.connected.wait()

    async def settled(self, within: float) -> None:
        """Returns once everything the indexer has received is recorded (or after ``within``
        seconds: a detached indexer, or one catching up on a long backlog)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within), self._recorded:
                await self._recorded.wait_for(self._is_settled)

    async def next_record(self, within: float) -> None:
        """Returns after the indexer's next write, or after ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within), self._recorded:
                await self._recorded.wait()

    def _is_settled(self) -> bool:
        return self._reader is not None and self._unrecorded == 0 and self._reader.waiting == 0

    async def _record_next_batch(self, reader: StreamReader) -> int | None:
        """Takes the next batch (waiting for its first message) and records it; the last
        offset taken. A reader that ends midway still has its batch recorded first."""
        messages: list[StreamMessage] = []
        try:
            first = await reader.next()
            assert first is not None  # no timeout: a message or the end
            messages.append(first)
            self._unrecorded = 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._batch_wait
            while len(messages) < self._batch_size and (left := deadline - loop.time()) > 0:
                message = await reader.next(within=left)
                if message is None:
                    break
                messages.append(message)
                self._unrecorded += 1
        finally:
            if messages:
                await self._record(messages)
        return messages[-1].offset if messages else None

    async def _record(self, messages: Sequence[StreamMessage]) -> None:
        entries = []
        for message in messages:
            event = read_event(message.offset, message.body, message.routing_key)
            if event is not None:
                entries.append(IndexEntry(event.event_id, message.offset))
        while True:  # the stream keeps the events: retry until the store takes them
            try:
                await self._index.record(entries)
                break
            except PyMongoError as exc:
                log.warning("feed.index_write_failed", error=repr(exc))
                await asyncio.sleep(RETRY_SECONDS)
        async with self._recorded:
            self._unrecorded = 0
            self._recorded.notify_all()

    async def _last_recorded(self) -> int | None:
        while True:
            try:
                return await self._index.last_offset()
            except PyMongoError as exc:
                log.warning("feed.index_unreadable", error=repr(exc))
                await asyncio.sleep(RETRY_SECONDS)
