"""The live feed: one stream reader per operator watching, resuming where the browser left off.

Every watcher reads the feed stream itself, from its own position, so two
operators never share (or lose) each other's place, and the broker, not this
process, holds what a slow browser has not read yet:

* a new watcher starts at ``next`` (only what comes), or at ``since`` (events
  from that moment, e.g. the start of the day);
* a reconnecting one (``Last-Event-ID``) starts right after that event's offset,
  looked up in the index (:mod:`vcs_desk.feed_index`): exactly the events it
  missed, in order, none twice. An id the index does not know (older than the
  stream keeps, or never seen) cannot be resumed from: the watcher starts at
  ``next`` and is told so (:attr:`Subscription.resume_failed`);
* each watcher shows only what its operator may see (:meth:`FeedEvent.visible_to`),
  and an event published twice (an outbox retry) once.

The watcher is attached to the stream before :meth:`LiveFeed.subscribe` returns,
so an event published after the answer started is never missed. A watcher's
stream ends when the caller's internal token expires (a minute): the browser
reconnects with ``Last-Event-ID``, losing nothing, and the intake checks the
caller again (a revoked token or an ended session stops there).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog
from aio_pika.abc import AbstractRobustConnection
from pymongo.asynchronous.database import AsyncDatabase

from vcs_desk.feed import FeedEvent, read_event
from vcs_desk.feed_index import FeedIndex, FeedIndexer
from vcs_desk.feed_stream import Position, StreamEnded, StreamReader
from vcs_shared.scope import Scope
from vcs_shared.store import Document
from vcs_shared.topology import Topology

log = structlog.get_logger(__name__)

RESUME_WAIT = 3.0
"""Seconds a reconnect waits for the indexer to record the event it names."""
LATE_RECORD_WAIT = 1.0
REMEMBERED_IDS = 2000
"""Event ids a watcher remembers to drop a second copy of one."""


class Subscription:
    """One operator's view of the stream; ``events()`` until the reader is lost or closed."""

    def __init__(
        self,
        reader: StreamReader,
        scope: Scope,
        province: str | None,
        *,
        resume_failed: bool,
        seen: str | None,
        done: set[Subscription],
    ) -> None:
        self._reader = reader
        self._scope = scope
        self._province = province
        self.resume_failed = resume_failed
        """The watcher named an event the feed could not resume after; it got ``next``."""
        self._seen: OrderedDict[str, None] = OrderedDict()
        if seen is not None:
            self._seen[seen] = None
        self._done = done

    async def events(self, *, until: datetime | None = None) -> AsyncIterator[FeedEvent]:
        """The events this operator may see, in stream order, each once; ends when the
        reader is lost, or at ``until`` (the browser reconnects with ``Last-Event-ID``)."""
        try:
            while True:
                left = None if until is None else (until - datetime.now(UTC)).total_seconds()
                if left is not None and left <= 0:
                    return
                message = await self._reader.next(within=left)
                if message is None:
                    return  # ``until`` came
                event = read_event(message.offset, message.body, message.routing_key)
                if event is None or not event.visible_to(self._scope, self._province):
                    continue
                if self._first_time(event.event_id):
                    yield event
        except StreamEnded:
            return
        finally:
            await self.close()

    def end(self) -> None:
        self._reader.end()

    async def close(self) -> None:
        self._done.discard(self)
        await self._reader.close()

    def _first_time(self, event_id: str) -> bool:
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)
        return True


class LiveFeed:
    """The desk's feed: the indexer in the background, and the watchers' subscriptions."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        stream: str,
        index: FeedIndex,
        indexer: FeedIndexer,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self._index = index
        self._indexer = indexer
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        connection: AbstractRobustConnection,
        topology: Topology,
        database: AsyncDatabase[Document],
    ) -> LiveFeed:
        """Checks the stream exists (a passive declare, which needs no permission), prepares
        the index and starts the indexer."""
        channel = await connection.channel()
        try:
            await channel.get_queue(topology.feed_stream, ensure=True)
        finally:
            await channel.close()
        index = FeedIndex(database)
        await index.ensure_indexes()
        feed = cls(
            connection,
            topology.feed_stream,
            index,
            FeedIndexer(connection, topology.feed_stream, index),
        )
        feed._task = asyncio.create_task(feed._indexer.run(), name="feed-indexer")
        return feed

    async def stop(self) -> None:
        """Ends every watcher's stream (their answers complete) and stops the indexer."""
        for subscription in list(self._subscriptions):
            subscription.end()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def subscribe(
        self,
        scope: Scope,
        *,
        province: str | None = None,
        last_event_id: str | None = None,
        since: datetime | None = None,
    ) -> Subscription:
        """A watcher attached to the stream: after ``last_event_id`` when the feed knows it,
        else from ``since``, else from what comes next."""
        start: Position = since if since is not None else "next"
        resume_failed = False
        if last_event_id:
            offset = await self.offset_of(last_event_id)
            if offset is None:
                log.info("feed.resume_unknown", last_event_id=last_event_id)
                start, resume_failed = "next", True
            else:
                start = offset + 1
        reader = await StreamReader.open(self._connection, self._stream, start)
        subscription = Subscription(
            reader,
            scope,
            province,
            resume_failed=resume_failed,
            seen=last_event_id,
            done=self._subscriptions,
        )
        self._subscriptions.add(subscription)
        return subscription

    async def offset_of(self, event_id: str) -> int | None:
        """The event's offset; waits a little for the indexer when it is not recorded yet
        (the browser may have reconnected right after the event reached it)."""
        offset = await self._index.offset_of(event_id)
        if offset is None:
            await self._indexer.settled(RESUME_WAIT)
            offset = await self._index.offset_of(event_id)
        if offset is None:  # the indexer's own copy may not even have arrived yet
            await self._indexer.next_record(LATE_RECORD_WAIT)
            offset = await self._index.offset_of(event_id)
        return offset
