"""Transactional outbox: an event is stored inside the document whose change it announces.

:class:`Outbox` is the one way the services write a change that announces events: the
change and its events go in one single-document write (the embedded store does not
isolate multi-document transactions), then :class:`OutboxRelay` publishes them with
confirms and marks them sent. If the process dies or the broker is down in between,
the relay's sweep finds the document and publishes what is unsent; consumers
deduplicate by event id, so publishing an entry twice is harmless, losing one is
impossible. Stores use an :class:`Outbox`; handlers only hand their store the events.

Stored shape, in the owning document:

* ``outbox``: the entries ``{"id", "routing_key", "body", "sent", "created_at"}``;
* ``outbox_pending``: true while any entry is unsent (the sweep's indexed query);
* ``outbox_count``: the number of entries, the compare-and-set guard of every
  outbox write, so marking entries sent never overwrites an entry added
  meanwhile, and two changes of one document never overwrite each other.

Marking entries sent is one ``bulk_write`` per batch, not one update per document: while
one batch of marks is being written, the marks of every other publish of the same
collection wait and go together in the next (group commit), so a burst of requests costs
a few mark commands instead of one per request, and a single publish still writes its mark
at once. A mark that is never written (the process dies, the batch fails) leaves the entry
unsent: the sweep publishes it again, which consumers already take as a duplicate.

Only top-level scalar fields are queried: the embedded store answers queries on
an indexed array path (``outbox.sent``) wrongly.

:func:`compare_and_set` is the read, apply-the-rule, conditional-write step itself, with its
retry: the outbox's writes are built on it, and so is a document that announces nothing
(the desk's read model of requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from vcs_shared.audit import AuditRecorded
from vcs_shared.broker import BrokerUnavailable, EventPublisher
from vcs_shared.envelope import OutgoingMessage, encode
from vcs_shared.events import Event
from vcs_shared.group_commit import GroupCommit
from vcs_shared.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from vcs_shared.store import Document

log = structlog.get_logger(__name__)

CHANGE_ATTEMPTS = 10


class _Offline:
    """The publisher of a process that writes but does not publish (a tool, a store test):
    every publish fails like an outage, so the entries wait for a service's relay."""

    async def publish(self, message: OutgoingMessage) -> None:
        raise BrokerUnavailable("this process does not publish; a service's relay will")


OFFLINE: EventPublisher = _Offline()


@dataclass(frozen=True, slots=True)
class Announcement:
    """The events a change announces, the audit entries it records (published on the internal
    audit exchange, never on the events one), and the correlation id they carry on."""

    events: tuple[Event, ...] = ()
    correlation_id: str | None = None
    audit: tuple[AuditRecorded, ...] = ()


SILENT = Announcement()
"""A change that announces nothing."""


def announce(
    *events: Event, correlation_id: str | None, audit: tuple[AuditRecorded, ...] = ()
) -> Announcement:
    return Announcement(events, correlation_id, audit)


@dataclass(frozen=True, slots=True)
class Change:
    """What one compare-and-set write sets, and what the document must still hold for it to
    apply (``guard``, beside the outbox size the outbox checks itself).

    ``announcement``: the events of this change when they depend on the document the rule
    saw (a ticket's move announces what it moved to); it replaces the announcement given to
    :meth:`Outbox.update`."""

    fields: Document
    guard: Document = field(default_factory=dict)
    announcement: Announcement | None = None


@dataclass(frozen=True, slots=True)
class Changed:
    """The document after :meth:`Outbox.update` (as found when nothing was written)."""

    document: Document
    written: bool


class ConcurrentChanges(RuntimeError):
    """A document kept changing under a compare-and-set write; the caller's message is retried."""


class Outbox:
    """Writes the documents of one collection together with the events they announce, then
    publishes those events through the collection's relay (:attr:`relay`)."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        source: str,
        publisher: EventPublisher = OFFLINE,
        share_guesses: bool = False,
    ) -> None:
        self._collection = collection
        self._source = source
        self._publishes = publisher is not OFFLINE  # a tool leaves its entries to a relay
        self._guesses = GroupCommit(collection, ordered=False) if share_guesses else None
        """``share_guesses``: see :meth:`update`'s ``expected``; the relay's marks go in the
        same batches (one update command for the guesses and marks of the moment)."""
        self.relay = OutboxRelay(collection, publisher, marks=self._guesses)

    async def ensure_index(self) -> None:
        await self._collection.create_index("outbox_pending")

    @staticmethod
    def quiet(document: Document) -> Document:
        """A new ``document`` with an empty outbox, for a store inserting several at once
        (``insert_many``) that change later through :meth:`update` (whose compare-and-set
        needs the outbox fields there)."""
        return {**document, **_outbox_fields([], [])}

    async def insert(self, document: Document, announcement: Announcement = SILENT) -> None:
        """Inserts a new document with its events, then publishes them.

        A unique index refusing the document raises ``DuplicateKeyError``; nothing was written.
        """
        messages = self._encode(announcement)
        fields = _outbox_fields([], messages)
        await self._collection.insert_one({**document, **fields})
        if messages and self._publishes:
            await self.relay.publish_now(document["_id"], fields["outbox"])

    async def update(
        self,
        doc_id: str,
        change: Callable[[Document], Change | None],
        announcement: Announcement = SILENT,
        *,
        projection: Document | None = None,
        expected: Document | None = None,
    ) -> Changed | None:
        """Applies ``change`` to the document as it is now with the events it announces, then
        publishes them.

        ``change`` sees the current document (``projection`` of it) and returns what to
        write, or None when its rule says nothing is to change. The write is a
        compare-and-set on the outbox size and the change's guard; when another write came
        between the read and this one, the document is read again and the rule applied
        again, so neither write is lost. None when there is no such document.

        ``expected``: what the caller knows the document holds (its outbox fields and what
        ``change`` looks at); the first write is tried on it without reading. A wrong
        guess is a write the compare-and-set refuses, after which the document is read as
        above, so it only saves the read when the guess is right.

        With ``share_guesses`` (given to the outbox) a guessed write that announces events
        goes in one ``bulk_write`` with the guessed writes of other updates of the collection
        made at the same moment, and with the relay's marks
        (:class:`~vcs_shared.group_commit.GroupCommit`). The store
        answers for the batch as a whole: when every statement in it matched, this one did;
        otherwise the document is read, and this write took effect if the document holds
        its events (their ids are new to every write), else the rule is applied again as
        after a refused guess.
        """
        messages = self._encode(announcement)
        tried: list[OutgoingMessage] = []  # the messages of the last write tried

        def with_events(current: Document) -> Change | None:
            wanted = change(current)
            if wanted is None:
                return None
            announced = messages
            if wanted.announcement is not None:
                announced = self._encode(wanted.announcement)
            tried[:] = announced
            fields = _outbox_fields(current.get("outbox", []), announced)
            guard = {"outbox_count": current.get("outbox_count", 0), **wanted.guard}
            return Change({**wanted.fields, **fields}, guard)

        if self._guesses is not None and expected is not None:
            changed = await self._guessed(self._guesses, doc_id, with_events, expected, tried)
            if changed is None:  # its batch had a statement that matched nothing: which?
                changed = await compare_and_set(
                    self._collection, doc_id, with_events, projection=projection
                )
                if changed is not None and not changed.written and _holds(changed, tried):
                    changed = Changed(changed.document, written=True)
        else:
            changed = await compare_and_set(
                self._collection, doc_id, with_events, projection=projection, expected=expected
            )
        if changed is not None and changed.written and tried and self._publishes:
            await self.relay.publish_now(doc_id, changed.document["outbox"])
        return changed

    async def _guessed(
        self,
        guesses: GroupCommit,
        doc_id: str,
        with_events: Callable[[Document], Change | None],
        expected: Document,
        tried: Sequence[OutgoingMessage],
    ) -> Changed | None:
        """The write on ``expected``, in a shared batch when it announces events (``tried``,
        filled by ``with_events``; see :meth:`update`); None when it did not match or its
        batch does not tell whether it did (a statement matched nothing, or failed: the
        batch's error may be another writer's, which must not fail this one)."""
        wanted = with_events(expected)
        if wanted is None:
            return Changed(expected, written=False)
        where, what = {**wanted.guard, "_id": doc_id}, {"$set": wanted.fields}
        if tried:
            try:
                matched = (await guesses.write([UpdateOne(where, what)])).all_matched
            except BulkWriteError:  # a statement of the batch failed, maybe another's: read
                matched = False
        else:  # nothing would tell afterwards whether it was this write: on its own
            matched = (await self._collection.update_one(where, what)).matched_count == 1
        return Changed({**expected, **wanted.fields}, written=True) if matched else None

    def _encode(self, announcement: Announcement) -> list[OutgoingMessage]:
        correlation_id = announcement.correlation_id
        announced: list[Event | AuditRecorded] = [*announcement.events, *announcement.audit]
        return [
            encode(event, source=self._source, correlation_id=correlation_id) for event in announced
        ]


async def compare_and_set(
    collection: AsyncCollection[Document],
    doc_id: str,
    change: Callable[[Document], Change | None],
    *,
    projection: Document | None = None,
    expected: Document | None = None,
    create: Document | None = None,
) -> Changed | None:
    """Applies ``change`` (a rule) to the document as it is now, in one conditional write.

    ``change`` sees the current document (``projection`` of it) and returns what to set and
    what the document must still hold for that (its guard), or None when its rule says
    nothing is to change. When another write came between the read and this one, the guard
    no longer matches: the document is read again and the rule applied again, so neither
    write is lost; :class:`ConcurrentChanges` when it keeps changing. None when there is no
    such document, unless ``create`` is given: then it is inserted as it is (if a write
    creates it meanwhile, that one is read and the rule applied to it).

    ``expected``: what the caller knows the document holds; the first write is tried on it
    without reading (a wrong guess is a write the guard refuses, then a read as above).
    """
    for attempt in range(CHANGE_ATTEMPTS):
        if attempt == 0 and expected is not None:
            current: Document | None = expected
        else:
            current = await collection.find_one({"_id": doc_id}, projection)
        if current is None:
            if create is None:
                return None
            try:
                await collection.insert_one(create)
            except DuplicateKeyError:
                continue  # created meanwhile: read it and apply the rule to it
            return Changed(create, written=True)
        wanted = change(current)
        if wanted is None:
            return Changed(current, written=False)
        result = await collection.update_one(
            {**wanted.guard, "_id": doc_id}, {"$set": wanted.fields}
        )
        if result.matched_count == 1:
            return Changed({**current, **wanted.fields}, written=True)
    raise ConcurrentChanges(f"{doc_id} kept changing while being written")


def _holds(changed: Changed, messages: Sequence[OutgoingMessage]) -> bool:
    """Whether the document holds these messages: it was their write that took effect (each
    message's id is new, so no other write could have put them there)."""
    stored = {entry["id"] for entry in changed.document.get("outbox", [])}
    return bool(messages) and all(message.id in stored for message in messages)


def _outbox_fields(existing: Sequence[Document], messages: Iterable[OutgoingMessage]) -> Document:
    """The outbox fields to write, in the same write as the change the messages announce."""
    now = datetime.now(UTC)
    entries = [*existing, *({**m.model_dump(), "sent": False, "created_at": now} for m in messages)]
    pending = any(not entry["sent"] for entry in entries)
    return {"outbox": entries, "outbox_pending": pending, "outbox_count": len(entries)}


class OutboxRelay:
    """Publishes the outbox entries of one collection: at once after a write, and by sweeping.

    While publishing fails the sweep backs off, but only to ``max_backoff``: a publish
    attempt while the broker is away fails at once without touching the network, so a
    short ceiling costs nothing and bounds how long the backlog waits once it is back.

    While all is well the sweep runs every ``sweep_interval`` (3 s, as long as an entry must
    wait before a sweep takes it, ``stale_after``), so an entry whose fast path never came
    (its process died) is published within about 6 s, at one query per 3 s per collection;
    after a failed fast-path publish it sweeps every ``retry_interval`` (1 s) until a publish
    goes through again.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        publisher: EventPublisher,
        *,
        sweep_interval: float = 3.0,
        retry_interval: float = 1.0,
        stale_after: float = 3.0,
        max_backoff: float = 5.0,
        marks: GroupCommit | None = None,
    ) -> None:
        self._collection = collection
        self._publisher = publisher
        self._sweep_interval = sweep_interval
        self._retry_interval = retry_interval
        self._stale_after = timedelta(seconds=stale_after)
        self._max_backoff = max_backoff
        self._healthy = True
        self._marks = marks or GroupCommit(collection, ordered=False)
        """Every mark is a compare-and-set of its own document: any order will do. ``marks``:
        a batch shared with other unordered writes of the collection (the outbox's guesses)."""

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
            published, mark = await self._publish(doc_id, outbox, cutoff=None)
            if mark is not None:
                await self._mark_sent([mark])
            return published
        except Exception as exc:  # e.g. the store went away before the entries were marked sent
            log.warning("outbox.publish_now_failed", document=doc_id, error=repr(exc))
            return False

    async def run(self, stop: asyncio.Event) -> None:
        """Sweeps for unsent entries until ``stop`` is set, backing off while publishing fails."""
        delay = self._retry_interval
        while not stop.is_set():
            try:
                ok = await self.sweep()
            except Exception as exc:  # the sweep must outlive any outage, whatever it raises
                log.warning("outbox.sweep_failed", error=repr(exc))
                ok = False
            if not ok:
                delay = min(self._max_backoff, delay * 2) * random.uniform(0.8, 1.2)
            elif self._healthy:
                delay = self._sweep_interval
            else:  # a fast-path publish failed since: its entry is due soon
                delay = self._retry_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def sweep(self, *, include_fresh: bool = False) -> bool:
        """Publishes every unsent entry older than ``stale_after``; False if any publish failed."""
        now = datetime.now(UTC)
        cutoff = now - (timedelta(0) if include_fresh else self._stale_after)
        cursor = self._collection.find({"outbox_pending": True}, {"outbox": 1}).limit(500)
        pending = [doc async for doc in cursor]
        self._measure(pending, now)
        marks: list[UpdateOne] = []
        ok = True
        for doc in pending:
            published, mark = await self._publish(doc["_id"], doc.get("outbox", []), cutoff=cutoff)
            if mark is not None:
                marks.append(mark)
            if not published:
                ok = False
                break
        if marks:
            await self._mark_sent(marks)
        return ok

    def _measure(self, pending: Sequence[Document], now: datetime) -> None:
        """The backlog the sweep found (at most its batch) and the age of its oldest entry."""
        unsent = [e for doc in pending for e in doc.get("outbox", []) if not e["sent"]]
        oldest = min((_aware(e["created_at"]) for e in unsent), default=now)
        name = self._collection.name
        OUTBOX_BACKLOG.labels(name).set(len(unsent))
        OUTBOX_OLDEST_AGE.labels(name).set((now - oldest).total_seconds())

    async def _publish(
        self, doc_id: str, outbox: Sequence[Document], *, cutoff: datetime | None
    ) -> tuple[bool, UpdateOne | None]:
        """Publishes the unsent entries of one document (older than ``cutoff``, if given);
        whether all went out, and the write that marks the ones that did (None: none did).

        The mark is a compare-and-set on the outbox size: if the document got another entry
        meanwhile it matches nothing, and the sweep publishes these entries again."""
        marked = [dict(entry) for entry in outbox]
        published = False
        ok = True
        for entry in marked:
            if entry["sent"] or (cutoff is not None and _aware(entry["created_at"]) > cutoff):
                continue
            message = OutgoingMessage(
                id=entry["id"],
                routing_key=entry["routing_key"],
                body=entry["body"],
                exchange=entry.get("exchange", "events"),
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
        if not published:
            return ok, None
        self._healthy = True
        mark = UpdateOne(
            {"_id": doc_id, "outbox_count": len(marked)},
            {"$set": {"outbox": marked, "outbox_pending": not all(e["sent"] for e in marked)}},
        )
        return ok, mark

    async def _mark_sent(self, marks: Sequence[UpdateOne]) -> None:
        """Writes ``marks`` together with the marks other publishes of this collection are
        waiting to write: one ``bulk_write`` per batch (see the module docstring); raises
        what their batch's write raised (the entries stay unsent and the sweep publishes
        them again)."""
        await self._marks.write(marks)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
