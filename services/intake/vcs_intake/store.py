"""The intake's own collection: one ``requests`` document per request, outbox embedded.

Accepting a request is a single insert of a document that already contains
its ``request.submitted`` event, so "stored" and "will be published" are one
atomic fact. A unique index on ``idempotency_key`` makes a retried submit find
the first request instead of making a second. Status changes are conditional
writes whose filters come from the status machine (:mod:`vcs_intake.domain`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_intake.domain import Assignment, Rejection, RequestState, sources
from vcs_shared.audit import AuditRecorded
from vcs_shared.broker import EventPublisher
from vcs_shared.events import Contact, RejectionReason, RequestCancelled, RequestSubmitted, Urgency
from vcs_shared.group_commit import GroupCommit
from vcs_shared.outbox import OFFLINE, Change, Outbox, announce
from vcs_shared.request_status import NOT_FINAL, Status
from vcs_shared.store import Document, epoch_ms

SOURCE = "intake"
UNUSED_INDEX = ("district_code", "submitted_at")
"""An index no query uses (see :meth:`MongoRequestStore._drop_unused_index`)."""


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which requests a list shows: one district, or some provinces (``None``: all of them),
    optionally only some statuses and meetings starting in ``[starts_from_ms, starts_before_ms)``.
    """

    district_code: str | None = None
    province_codes: frozenset[str] | None = None
    statuses: tuple[Status, ...] = ()
    starts_from_ms: int | None = None
    starts_before_ms: int | None = None

    def queries(self) -> list[Document]:
        """One store query per province (equality on a single-field index, which the
        embedded store serves; it scans for ``$in`` on anything but ``_id``)."""
        common: Document = {}
        if self.statuses:
            values = [status.value for status in self.statuses]
            common["status"] = values[0] if len(values) == 1 else {"$in": values}
        window: Document = {}
        if self.starts_from_ms is not None:
            window["$gte"] = self.starts_from_ms
        if self.starts_before_ms is not None:
            window["$lt"] = self.starts_before_ms
        if window:
            common["starts_ms"] = window
        if self.district_code is not None:
            return [{"district_code": self.district_code, **common}]
        if self.province_codes is None:
            return [common]
        return [{"province_code": code, **common} for code in sorted(self.province_codes)]


@dataclass(frozen=True, slots=True)
class Listed:
    """A request in a list, with its place in the newest-first order (``submitted_ms``, id)."""

    request: RequestState
    key: tuple[int, str]


class DuplicateSubmission(Exception):
    """An earlier request already holds this idempotency key."""

    def __init__(self, existing: RequestState) -> None:
        self.existing = existing
        super().__init__(existing.request_id)


class RequestStore(Protocol):
    async def insert(self, request: RequestState, event: RequestSubmitted) -> None: ...
    async def get(self, request_id: str) -> RequestState | None: ...
    async def cancel(
        self, event: RequestCancelled, audit: AuditRecorded
    ) -> RequestState | None: ...
    async def assign(self, request_id: str, assignment: Assignment) -> None: ...
    async def reassign(
        self, request_id: str, assignment: Assignment, reassignment: int
    ) -> None: ...
    async def reject(self, request_id: str, rejection: Rejection) -> None: ...
    async def mark_delivered(self, request_id: str, at: datetime) -> None: ...
    async def mark_delivery_failed(self, request_id: str, error: str) -> None: ...
    async def note_release(self, request_id: str, meeting_id: str) -> None: ...
    async def ping(self) -> None: ...
    async def count(self, which: RequestFilter) -> int: ...
    async def find_by_key(self, idempotency_key: str) -> RequestState | None: ...


class MongoRequestStore:
    def __init__(self, db: AsyncDatabase[Document], publisher: EventPublisher = OFFLINE) -> None:
        self.db = db
        self.requests = db["requests"]
        self._outbox = Outbox(self.requests, source=SOURCE, publisher=publisher)
        self.relay = self._outbox.relay
        self._projection = GroupCommit(self.requests, ordered=True)
        """The status projection's writes: those of concurrent events go in one command."""

    async def ensure_indexes(self) -> None:
        await self.requests.create_index("idempotency_key", unique=True)
        await self._drop_unused_index()
        await self.requests.create_index("district_code")
        await self.requests.create_index("province_code")
        await self.requests.create_index("status")
        await self._outbox.ensure_index()

    async def _drop_unused_index(self) -> None:
        """Drops ``(district_code, submitted_at)`` from databases made before it went: no
        query filters or sorts on ``submitted_at`` (lists use ``submitted_ms``), on either
        store, yet every insert and status update maintained it. Found by its fields: the
        stores name it differently (nx-27017 reports ``idx_requests_...`` and both
        directions as 1)."""
        for name, index in (await self.requests.index_information()).items():
            if tuple(field for field, _ in index["key"]) == UNUSED_INDEX:
                await self.requests.drop_index(name)

    async def insert(self, request: RequestState, event: RequestSubmitted) -> None:
        """Stores a new request with its ``request.submitted`` (``event``), then publishes it;
        raises :class:`DuplicateSubmission` when its idempotency key was used before."""
        try:
            announcement = announce(event, correlation_id=request.request_id)
            await self._outbox.insert(request_to_document(request), announcement)
        except DuplicateKeyError as exc:
            existing = await self.requests.find_one({"idempotency_key": request.idempotency_key})
            if existing is None:
                raise
            raise DuplicateSubmission(request_from_document(existing)) from exc

    async def get(self, request_id: str) -> RequestState | None:
        document = await self.requests.find_one({"_id": request_id})
        return None if document is None else request_from_document(document)

    async def stuck(self, submitted_before: datetime) -> list[RequestState]:
        """Requests not final (submitted or assigned) submitted before that moment and not
        reported stuck yet (one indexed equality per status)."""
        found: list[RequestState] = []
        for status in NOT_FINAL:
            query = {
                "status": status.value,
                "submitted_ms": {"$lt": epoch_ms(submitted_before)},
                "stuck_reported": {"$exists": False},
            }
            found += [request_from_document(d) async for d in self.requests.find(query)]
        return found

    async def count_stuck(self, submitted_before: datetime) -> int:
        """Requests not final submitted before that moment, reported or not (the gauge)."""
        before = {"$lt": epoch_ms(submitted_before)}
        return sum(
            [await self._matching({"status": s.value, "submitted_ms": before}) for s in NOT_FINAL]
        )

    async def mark_stuck_reported(self, request_id: str, at: datetime) -> None:
        await self.requests.update_one(
            {"_id": request_id}, {"$set": {"stuck_reported": epoch_ms(at)}}
        )

    async def count(self, which: RequestFilter) -> int:
        """How many requests ``which`` selects (an office's open bookings, for its quota)."""
        return sum([await self._matching(query) for query in which.queries()])

    async def _matching(self, query: Document) -> int:
        """How many requests match ``query``, counted from a ``find`` of their ids rather than
        ``count_documents``: the embedded store runs the latter's ``$group`` in Python over
        copies of every document (122 ms at 5,000 requests, against 0.9 ms for the ``find``;
        the office quota's count was a fifth of its time in the benchmark's burst). Both stores
        serve the ``find`` from the same index."""
        return len([document async for document in self.requests.find(query, {"_id": 1})])

    async def find_by_key(self, idempotency_key: str) -> RequestState | None:
        document = await self.requests.find_one({"idempotency_key": idempotency_key})
        return None if document is None else request_from_document(document)

    async def get_many(self, request_ids: list[str]) -> list[RequestState]:
        """The requests with these ids that exist (one ``$in`` on ``_id``)."""
        if not request_ids:
            return []
        found = self.requests.find({"_id": {"$in": sorted(set(request_ids))}})
        return [request_from_document(document) async for document in found]

    async def newest(
        self, which: RequestFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[Listed]:
        """Newest submitted first, ``limit`` of them, continuing after the ``key`` of the last
        one a previous page showed (keyset pagination: stable while requests come in)."""
        order = [("submitted_ms", -1), ("_id", -1)]
        found: list[Listed] = []
        for query in which.queries():
            if after is not None:
                ms, last_id = after
                query = {
                    **query,
                    "$or": [
                        {"submitted_ms": {"$lt": ms}},
                        {"submitted_ms": ms, "_id": {"$lt": last_id}},
                    ],
                }
            async for document in self.requests.find(query).sort(order).limit(limit):
                key = (int(document.get("submitted_ms", 0)), str(document["_id"]))
                found.append(Listed(request_from_document(document), key))
        found.sort(key=lambda listed: listed.key, reverse=True)
        return found[:limit]

    async def by_start(
        self, which: RequestFilter, *, earliest_first: bool, limit: int
    ) -> list[RequestState]:
        """Meetings in the order they start (soonest or latest first), at most ``limit``."""
        direction = 1 if earliest_first else -1
        found: list[RequestState] = []
        for query in which.queries():
            cursor = self.requests.find(query).sort([("starts_ms", direction), ("_id", 1)])
            found += [request_from_document(d) async for d in cursor.limit(limit)]
        found.sort(key=lambda request: request.starts_at, reverse=not earliest_first)
        return found[:limit]

    async def cancel(self, event: RequestCancelled, audit: AuditRecorded) -> RequestState | None:
        """Cancels with its event and its audit entry in one write when the status allows;
        returns the request as it is then (None if unknown). A status change racing the cancel
        makes it look again; a request already cancelled records nothing."""

        def change(current: Document) -> Change | None:
            if not Status(current["status"]).may_become(Status.cancelled):
                return None
            return Change(
                {
                    "status": Status.cancelled.value,
                    "cancellation": {"at": event.cancelled_at, "by": event.cancelled_by},
                },
                guard={"status": current["status"]},
            )

        announcement = announce(event, correlation_id=event.request_id, audit=(audit,))
        changed = await self._outbox.update(event.request_id, change, announcement)
        return None if changed is None else request_from_document(changed.document)

    async def assign(self, request_id: str, assignment: Assignment) -> None:
        """Moves the request to assigned with its room when its status allows; one further
        along (delivered first, by reordering) gets the room without its status moving
        back, unless it shows no room any more (cancelled, rejected) or an operator moved
        it from that room. Two conditional writes in order; the second only when the first's
        batch says not every statement in it matched (this one may have): when the move
        matched, the second would set the same room again, a statement per request that the
        embedded store pays ~0.5 ms of CPU for."""
        assignment_document = _assignment_document(assignment)
        move = self._move(request_id, Status.assigned, {"assignment": assignment_document})
        if (await self._projection.write([move])).all_matched:
            return
        shown = UpdateOne(
            {
                "_id": request_id,
                "status": {"$nin": [s.value for s in Status if not s.shows_room]},
                "reassignments": {"$exists": False},
            },
            {"$set": {"assignment": assignment_document}},
        )
        await self._projection.write([shown])

    async def reassign(self, request_id: str, assignment: Assignment, reassignment: int) -> None:
        """Shows the room an operator moved the booking to, unless a later move is shown
        already; a request still ``submitted`` (the move's event came first) becomes
        ``assigned`` with it. Nothing changes for one that shows no room any more."""
        fields = {"assignment": _assignment_document(assignment), "reassignments": reassignment}
        for newer in ({"$exists": False}, {"$lt": reassignment}):
            moved = await self.requests.update_one(
                {"_id": request_id, "status": Status.submitted.value, "reassignments": newer},
                {"$set": {**fields, "status": Status.assigned.value}},
            )
            if moved.matched_count:
                return
            shown = await self.requests.update_one(
                {
                    "_id": request_id,
                    "status": {"$in": [s.value for s in Status if s.shows_room]},
                    "reassignments": newer,
                },
                {"$set": fields},
            )
            if shown.matched_count:
                return

    async def reject(self, request_id: str, rejection: Rejection) -> None:
        rejected = {
            "reason": rejection.reason.value,
            "message_th": rejection.message_th,
            "message_en": rejection.message_en,
        }
        moved = self._move(request_id, Status.rejected, {"rejection": rejected})
        await self._projection.write([moved])

    async def mark_delivered(self, request_id: str, at: datetime) -> None:
        # after a redelivery of failed credentials the old error is no longer the state
        delivered = {"delivery": {"at": at}, "delivery_error": None}
        await self._projection.write([self._move(request_id, Status.delivered, delivered)])

    async def mark_delivery_failed(self, request_id: str, error: str) -> None:
        failed = {"delivery_error": error}
        await self._projection.write([self._move(request_id, Status.delivery_failed, failed)])

    async def note_release(self, request_id: str, meeting_id: str) -> None:
        await self._projection.write(
            [UpdateOne({"_id": request_id}, {"$set": {"released_meeting_id": meeting_id}})]
        )

    async def ping(self) -> None:
        await self.db.command("ping")

    @staticmethod
    def _move(request_id: str, target: Status, changes: Document) -> UpdateOne:
        """The conditional write to ``target``: only from a status allowed to move there, so a
        replayed or late event never moves a request back."""
        return UpdateOne(
            {"_id": request_id, "status": {"$in": [s.value for s in sources(target)]}},
            {"$set": {"status": target.value, **changes}},
        )


def request_to_document(request: RequestState) -> Document:
    """A new request's document; times in UTC."""
    return {
        "_id": request.request_id,
        "request_id": request.request_id,  # what it is about, whatever its key (tests count it)
        "district_code": request.district_code,
        "province_code": request.province_code,
        "title": request.title,
        "starts_at": request.starts_at.astimezone(UTC),
        "ends_at": request.ends_at.astimezone(UTC),
        "participants": request.participants,
        "urgency": request.urgency.value,
        "needs_support": request.needs_support,
        "contact": request.contact.model_dump(),
        "status": request.status.value,
        "submitted_at": request.submitted_at,
        # Integer copies for lists: the embedded store filters and sorts numbers reliably.
        "submitted_ms": epoch_ms(request.submitted_at),
        "starts_ms": epoch_ms(request.starts_at),
        "idempotency_key": request.idempotency_key,
        "fingerprint": request.fingerprint,
        "assignment": None,
        "rejection": None,
    }


def request_from_document(document: Document) -> RequestState:
    assignment = document.get("assignment")
    rejection = document.get("rejection")
    return RequestState(
        request_id=document["_id"],
        district_code=document["district_code"],
        province_code=document["province_code"],
        title=document["title"],
        starts_at=document["starts_at"],
        ends_at=document["ends_at"],
        participants=document["participants"],
        urgency=Urgency(document["urgency"]),
        needs_support=document["needs_support"],
        contact=Contact.model_validate(document["contact"]),
        submitted_at=document["submitted_at"],
        idempotency_key=document["idempotency_key"],
        fingerprint=document.get("fingerprint", ""),
        status=Status(document["status"]),
        assignment=Assignment(**assignment) if assignment else None,
        rejection=_rejection_from_document(rejection) if rejection else None,
        delivery_error=document.get("delivery_error"),
    )


def _rejection_from_document(rejection: Document) -> Rejection:
    reason = RejectionReason(rejection["reason"])
    return Rejection(reason, rejection["message_th"], rejection["message_en"])


def _assignment_document(assignment: Assignment) -> Document:
    return asdict(assignment)
