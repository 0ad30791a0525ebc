"""The notifier's own collections: one ``deliveries`` document per request, and the
``reminders`` to send before meetings (:class:`MongoReminderStore`).

It holds the contact learned from ``request.submitted`` and, once sent, each
mail's outcome with the events announcing it (written through an
:class:`~vcs_shared.outbox.Outbox`). The document mapping of a
:class:`~vcs_notifier.domain.Delivery` is at the end of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo import InsertOne, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from vcs_notifier.domain import Booking, Delivery, MailKind, MailOutcome
from vcs_notifier.reminders import Reminder, label
from vcs_shared.broker import EventPublisher
from vcs_shared.events import Contact
from vcs_shared.group_commit import GroupCommit
from vcs_shared.outbox import OFFLINE, SILENT, Announcement, Change, Outbox
from vcs_shared.store import Document, epoch_ms, raise_unless_duplicates

SOURCE = "notifier"


class DeliveryStore(Protocol):
    async def remember(self, delivery: Delivery) -> None: ...
    async def delivery(self, request_id: str) -> Delivery | None: ...
    async def claim(
        self,
        request_id: str,
        kind: MailKind,
        lease: timedelta,
        *,
        now: datetime | None = None,
        booking: Booking | None = None,
        unless: MailKind | None = None,
        after: MailKind | None = None,
    ) -> Delivery | None: ...
    async def record_outcome(
        self,
        request_id: str,
        outcome: MailOutcome,
        announcement: Announcement = SILENT,
        *,
        first: bool = False,
    ) -> bool: ...
    async def claim_redelivery(
        self, request_id: str, lease: timedelta, *, now: datetime | None = None
    ) -> bool: ...
    async def record_redelivery(
        self, request_id: str, outcome: MailOutcome, announcement: Announcement
    ) -> None: ...
    async def release_redelivery_claim(self, request_id: str) -> None: ...
    async def record_reassignment(
        self,
        request_id: str,
        booking: Booking,
        reassignment: int,
        outcome: MailOutcome,
        announcement: Announcement,
    ) -> None: ...


class MongoDeliveryStore:
    def __init__(self, db: AsyncDatabase[Document], publisher: EventPublisher = OFFLINE) -> None:
        self.deliveries = db["deliveries"]
        self._outbox = Outbox(
            self.deliveries, source=SOURCE, publisher=publisher, share_guesses=True
        )
        self.relay = self._outbox.relay
        self._inserts = GroupCommit(self.deliveries, ordered=False)
        """The contacts of every request remembered at once go in one write."""

    async def ensure_indexes(self) -> None:
        await self._outbox.ensure_index()

    async def remember(self, delivery: Delivery) -> None:
        """Keeps the contact of a request; the first copy of its event wins (its ``_id`` is
        the request's). With an empty outbox: nothing is announced yet.

        The insert is shared with the other requests remembered at the same moment (one
        unordered insert per batch, :class:`~vcs_shared.group_commit.GroupCommit`); this
        returns once the batch holding it is written. Duplicates (anyone's: a redelivered
        ``request.submitted``) are ignored; any other error of the batch is raised to every
        caller in it, whose message is retried (the insert is idempotent)."""
        insert = InsertOne(self._outbox.quiet(delivery_to_document(delivery)))
        try:
            await self._inserts.write([insert])
        except BulkWriteError as exc:
            raise_unless_duplicates(exc)

    async def delivery(self, request_id: str) -> Delivery | None:
        document = await self.deliveries.find_one({"_id": request_id})
        return None if document is None else delivery_from_document(document)

    async def claim(
        self,
        request_id: str,
        kind: MailKind,
        lease: timedelta,
        *,
        now: datetime | None = None,
        booking: Booking | None = None,
        unless: MailKind | None = None,
        after: MailKind | None = None,
    ) -> Delivery | None:
        """The right to send one kind of message for a request: one handler at a time holds it,
        so two copies of an event handled at once send one message. It is a lease: a handler
        that died holding it is replaced once ``lease`` has passed.

        ``unless``: not once that kind was claimed (no credentials once a cancellation is
        under way); ``after``: not while that kind is under way, only once it was recorded
        or never claimed (a cancellation waits for the credentials being sent). One
        compare-and-set write per case, so the order two handlers meet in is the document's:
        nx-27017 matches an update filter wrongly when an ``$or`` holds an ``$exists``. Claim
        times are epoch milliseconds (:func:`epoch_ms`).

        ``booking`` (the credentials' room) is kept in the same write, for a redelivery or a
        reminder later. Returns the delivery as claimed (the write returns the document, so
        a claimed mail costs one command), None when it is not this caller's to send."""
        now = now or datetime.now(UTC)
        claimed_ms = _claim_field(kind)
        changes: Document = {claimed_ms: epoch_ms(now)}
        if booking is not None:
            changes["booking"] = booking_to_document(booking)
        base: Document = {"_id": request_id, kind: {"$exists": False}}
        if unless is not None:
            base[_claim_field(unless)] = {"$exists": False}
        waits: list[Document] = [{}]
        if after is not None:
            waits = [{after: {"$exists": True}}, {_claim_field(after): {"$exists": False}}]
        for held in ({"$exists": False}, {"$lt": epoch_ms(now - lease)}):
            for wait in waits:
                claimed = await self.deliveries.find_one_and_update(
                    {**base, **wait, claimed_ms: held},
                    {"$set": changes},
                    return_document=ReturnDocument.AFTER,
                )
                if claimed is not None:
                    return delivery_from_document(claimed)
        return None

    async def record_outcome(
        self,
        request_id: str,
        outcome: MailOutcome,
        announcement: Announcement = SILENT,
        *,
        first: bool = False,
    ) -> bool:
        """Records the outcome of one kind of mail once, with its events (then published);
        False if it was recorded before. The other kind of mail recorded meanwhile (a release
        racing an assignment) makes the outbox look again, so neither outcome is lost.

        ``first``: the caller saw no outcome recorded for the request yet, so its outbox is
        empty (only outcomes add entries): the write is tried on that without reading the
        document first (:meth:`Outbox.update`'s ``expected``; the compare-and-set on the
        outbox size and the outcome's absence catches a wrong guess). That guessed write goes
        in one command with the others recorded at the same moment (the outbox's
        ``share_guesses``); a batch that does not tell whether it matched is read back."""
        kind = outcome.kind

        def change(current: Document) -> Change | None:
            if kind in current:
                return None
            return Change({kind: outcome_to_document(outcome)}, guard={kind: {"$exists": False}})

        projection = {"outbox": 1, "outbox_count": 1, kind: 1}
        expected = {"_id": request_id, "outbox": [], "outbox_count": 0} if first else None
        changed = await self._outbox.update(
            request_id, change, announcement, projection=projection, expected=expected
        )
        return changed is not None and changed.written

    async def claim_redelivery(
        self, request_id: str, lease: timedelta, *, now: datetime | None = None
    ) -> bool:
        """The right to send the credentials again: one redelivery of a request at a time
        (two operators pressing at once send one mail); a lease like :meth:`claim`'s."""
        now = now or datetime.now(UTC)
        for held in ({"$exists": False}, {"$lt": epoch_ms(now - lease)}):
            result = await self.deliveries.update_one(
                {"_id": request_id, REDELIVERY_CLAIM: held},
                {"$set": {REDELIVERY_CLAIM: epoch_ms(now)}},
            )
            if result.modified_count == 1:
                return True
        return False

    async def record_redelivery(
        self, request_id: str, outcome: MailOutcome, announcement: Announcement
    ) -> None:
        """The credentials' latest outcome replaces the one before, with its event, and the
        redelivery claim is given back (a later redelivery may go)."""

        def change(current: Document) -> Change:
            return Change(
                {
                    outcome.kind: outcome_to_document(outcome),
                    "redeliveries": int(current.get("redeliveries", 0)) + 1,
                    REDELIVERY_CLAIM: 0,
                }
            )

        projection = {"outbox": 1, "outbox_count": 1, "redeliveries": 1}
        await self._outbox.update(request_id, change, announcement, projection=projection)

    async def release_redelivery_claim(self, request_id: str) -> None:
        await self.deliveries.update_one({"_id": request_id}, {"$set": {REDELIVERY_CLAIM: 0}})

    async def record_reassignment(
        self,
        request_id: str,
        booking: Booking,
        reassignment: int,
        outcome: MailOutcome,
        announcement: Announcement,
    ) -> None:
        """The booking's new room and the outcome of sending its credentials, with its event;
        the claim taken for the sending is given back. Once only: a write repeated after the
        store's reply was lost (the notifier retries it through an outage) changes nothing."""

        def change(current: Document) -> Change | None:
            if int(current.get("reassignments", 0)) >= reassignment:
                return None
            return Change(
                {
                    "booking": booking_to_document(booking),
                    "reassignments": reassignment,
                    outcome.kind: outcome_to_document(outcome),
                    REDELIVERY_CLAIM: 0,
                }
            )

        projection = {"outbox": 1, "outbox_count": 1, "reassignments": 1}
        await self._outbox.update(request_id, change, announcement, projection=projection)


REDELIVERY_CLAIM = "redelivery_claimed_ms"
NEVER_MS = 2**62
"""The ``due_ms`` of a reminder that is done (sent, failed, withdrawn): never due again, so
the due query (``due_ms <= now``) finds only what is still to send."""
FINISHED = frozenset({"sent", "failed", "skipped"})
"""The states of a reminder some process handled when it was due (not ``withdrawn``: one
withdrawn while it was being sent went out all the same, and is finished)."""


@dataclass(frozen=True, slots=True)
class DueReminder:
    """A reminder whose time has come, as found (claiming it is a separate write)."""

    reminder_id: str
    request_id: str
    lead: timedelta


class ReminderStore(Protocol):
    async def schedule(self, reminders: Sequence[Reminder]) -> None: ...
    async def due(self, now: datetime, *, limit: int) -> list[DueReminder]: ...
    async def claim(self, reminder_id: str, lease: timedelta, *, now: datetime) -> bool: ...
    async def finish(
        self,
        reminder_id: str,
        state: str,
        *,
        at: datetime,
        error: str | None = None,
        announcement: Announcement = SILENT,
    ) -> None: ...
    async def withdraw(self, request_id: str, *, at: datetime) -> int: ...


class MongoReminderStore:
    """The notifier's ``reminders``: one document per request and lead time, due at an epoch
    millisecond (``due_ms``, its own single-field index: the due query is one range over it),
    claimed by one notifier process at a time (``claimed_ms``, compare-and-set). A finished
    reminder announces ``reminder.sent`` through the collection's outbox (:attr:`relay`)."""

    def __init__(self, db: AsyncDatabase[Document], publisher: EventPublisher = OFFLINE) -> None:
        self.reminders = db["reminders"]
        self._outbox = Outbox(self.reminders, source=SOURCE, publisher=publisher)
        self.relay = self._outbox.relay
        self._inserts = GroupCommit(self.reminders, ordered=False)
        """The reminders of every booking being scheduled at once go in one write."""

    async def ensure_indexes(self) -> None:
        await self._outbox.ensure_index()
        await self.reminders.create_index("due_ms")
        await self.reminders.create_index("request_id")

    async def schedule(self, reminders: Sequence[Reminder]) -> None:
        """Stores each reminder unless it is there already (the same request and lead time:
        a redelivered ``room.assigned`` schedules nothing twice), all in one unordered
        write: a duplicate is refused alone and the others still go in. Each with its (empty)
        outbox, which :meth:`finish` writes ``reminder.sent`` to.

        The write is shared with the other bookings being scheduled at the same moment
        (:class:`~vcs_shared.group_commit.GroupCommit`: one insert command per batch, not one
        per booking); this returns only once the batch holding these reminders is written,
        so they are stored before the credentials are sent, as before. A batch's error
        reaches every caller in it: duplicates (anyone's) are what a redelivery leaves and
        are ignored, any other error is raised and the caller's message is retried (the
        inserts are idempotent)."""
        if not reminders:
            return
        inserts = [InsertOne(self._outbox.quiet(reminder_to_document(r))) for r in reminders]
        try:
            await self._inserts.write(inserts)
        except BulkWriteError as exc:
            raise_unless_duplicates(exc)

    async def due(self, now: datetime, *, limit: int) -> list[DueReminder]:
        cursor = self.reminders.find({"due_ms": {"$lte": epoch_ms(now)}}).limit(limit)
        return [
            DueReminder(d["_id"], d["request_id"], timedelta(seconds=d["lead_seconds"]))
            async for d in cursor
        ]

    async def claim(self, reminder_id: str, lease: timedelta, *, now: datetime) -> bool:
        """The right to send one reminder: of every process that found it due, one gets it;
        a holder that died is replaced once ``lease`` has passed."""
        result = await self.reminders.update_one(
            {
                "_id": reminder_id,
                "due_ms": {"$lte": epoch_ms(now)},
                "claimed_ms": {"$lt": epoch_ms(now - lease)},
            },
            {"$set": {"claimed_ms": epoch_ms(now)}},
        )
        return result.modified_count == 1

    async def finish(
        self,
        reminder_id: str,
        state: str,
        *,
        at: datetime,
        error: str | None = None,
        announcement: Announcement = SILENT,
    ) -> None:
        """Done for good (``sent``, ``failed`` with the reason, ``skipped``): never due again,
        written once with what it announces (a second process finishing the same reminder,
        after its lease ran out, announces nothing again)."""
        fields = {"due_ms": NEVER_MS, "state": state, "done_ms": epoch_ms(at), "error": error}

        def change(current: Document) -> Change | None:
            if current.get("state") in FINISHED:
                return None
            return Change(fields, guard={"state": current.get("state")})

        # One scheduled before reminders had an outbox has no outbox fields, which the
        # compare-and-set below needs: it gets an empty one (a no-op for every later one).
        await self.reminders.update_one(
            {"_id": reminder_id, "outbox_count": {"$exists": False}},
            {"$set": self._outbox.quiet({})},
        )
        projection = {"outbox": 1, "outbox_count": 1, "state": 1}
        await self._outbox.update(reminder_id, change, announcement, projection=projection)

    async def withdraw(self, request_id: str, *, at: datetime) -> int:
        """The reminders of a cancelled request not sent yet are dropped; how many."""
        result = await self.reminders.update_many(
            {"request_id": request_id, "state": "pending"},
            {"$set": {"due_ms": NEVER_MS, "state": "withdrawn", "done_ms": epoch_ms(at)}},
        )
        return result.modified_count


def reminder_to_document(reminder: Reminder) -> Document:
    return {
        "_id": reminder.reminder_id,
        "request_id": reminder.request_id,
        "lead": label(reminder.lead),
        "lead_seconds": int(reminder.lead.total_seconds()),
        "due_ms": epoch_ms(reminder.due_at),
        "claimed_ms": 0,
        "state": "pending",
    }


def _claim_field(kind: MailKind) -> str:
    return f"{kind}_claimed_ms"


def delivery_to_document(delivery: Delivery) -> Document:
    document: Document = {
        "_id": delivery.request_id,
        "request_id": delivery.request_id,  # what it is about, whatever its key (tests count it)
        "contact": delivery.contact.model_dump(),
        "title": delivery.title,
        "province_code": delivery.province_code,
        "district_code": delivery.district_code,
        "created_at": delivery.created_at,
        "starts_at": delivery.starts_at.astimezone(UTC),
        "ends_at": delivery.ends_at.astimezone(UTC),
        "participants": delivery.participants,
        "needs_support": delivery.needs_support,
    }
    document.update({o.kind: outcome_to_document(o) for o in delivery.outcomes.values()})
    if delivery.booking is not None:
        document["booking"] = booking_to_document(delivery.booking)
    return document


def delivery_from_document(document: Document) -> Delivery:
    return Delivery(
        request_id=document["_id"],
        contact=Contact.model_validate(document["contact"]),
        title=document["title"],
        province_code=document["province_code"],
        district_code=document["district_code"],
        created_at=document["created_at"],
        starts_at=_aware(document.get("starts_at") or document["created_at"]),
        ends_at=_aware(document.get("ends_at") or document["created_at"]),
        participants=int(document.get("participants", 0)),
        needs_support=bool(document.get("needs_support", False)),
        claimed=frozenset(kind for kind in MailKind if document.get(_claim_field(kind))),
        outcomes={
            kind: outcome_from_document(kind, document[kind])
            for kind in MailKind
            if kind in document
        },
        booking=booking_from_document(document["booking"]) if "booking" in document else None,
        redeliveries=int(document.get("redeliveries", 0)),
        reassignments=int(document.get("reassignments", 0)),
    )


def booking_to_document(booking: Booking) -> Document:
    return {
        "meeting_id": booking.meeting_id,
        "capacity": booking.capacity,
        "starts_at": booking.starts_at.astimezone(UTC),
        "ends_at": booking.ends_at.astimezone(UTC),
        "sealed_credentials": booking.sealed_credentials,
        "version": booking.version,
    }


def booking_from_document(document: Document) -> Booking:
    return Booking(
        meeting_id=document["meeting_id"],
        capacity=int(document["capacity"]),
        starts_at=_aware(document["starts_at"]),
        ends_at=_aware(document["ends_at"]),
        sealed_credentials=document["sealed_credentials"],
        version=int(document.get("version", 0)),
    )


def _aware(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime (a nested ``$set`` datetime may come back as a
    string from nx-27017, see docs/architecture.md)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
