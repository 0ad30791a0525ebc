"""The operators' read model of requests: what ``GET /v1/admin/requests`` lists and
``…/{id}/history`` tells, kept by the desk from the events (it never reads the intake's store).

Two collections, shaped for the embedded store's limits (only single-field indexes serve a
query, ``$in`` only on ``_id``, no datetime fields: epoch-ms ints; ``find`` materialises the
whole result):

* ``request_board`` — one document per request (``_id`` = request id) with what a list row
  shows. A listing filters on the single most selective indexed field it was given
  (``district_code``, ``day``, ``province_code`` — one query per province of the caller when
  none is given — ``status``) and checks the rest in Python; pages follow a
  ``(submitted_ms, _id)`` cursor, newest first.
* ``request_events`` — one document per event (``_id`` = CloudEvent id, so a redelivery is
  one entry), indexed by ``request_id``: the history.

Events may come in any order (``room.assigned`` before ``request.submitted``): the status
moves only along :data:`vcs_shared.request_status.MOVES` through a compare-and-set on the
status read (:func:`vcs_shared.outbox.compare_and_set`), so a late event never moves a
request back, and the submitted fields are ``$set`` whenever they come without touching the
status.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_shared.events import Urgency
from vcs_shared.outbox import Change, compare_and_set
from vcs_shared.request_status import Status, is_stuck
from vcs_shared.scope import Scope
from vcs_shared.store import Document
from vcs_shared.thaitime import BANGKOK

BOARD = "request_board"
EVENTS = "request_events"


@dataclass(frozen=True, slots=True)
class BoardQuery:
    """A listing's filters, all optional but the caller's scope."""

    scope: Scope
    province: str | None = None
    district: str | None = None
    status: Status | None = None
    day: date | None = None
    urgency: Urgency | None = None
    needs_support: bool | None = None
    stuck: bool | None = None
    now: datetime | None = None
    stuck_after: timedelta = timedelta(minutes=10)

    def shows(self, row: Document) -> bool:
        """Whether one row passes every filter (the indexed one was applied by the store)."""
        province = row.get("province_code")
        if not self.scope.covers_province(province):
            return False
        checks: list[tuple[Any, Any]] = [
            (self.province, province),
            (self.district, row.get("district_code")),
            (self.status and self.status.value, row.get("status")),
            (self.day and self.day.isoformat(), row.get("day")),
            (self.urgency and self.urgency.value, row.get("urgency")),
            (self.needs_support, row.get("needs_support")),
        ]
        if any(wanted is not None and wanted != actual for wanted, actual in checks):
            return False
        return self.stuck is None or self.stuck == self._is_stuck(row)

    def _is_stuck(self, row: Document) -> bool:
        submitted = row.get("submitted_ms")
        if submitted is None or self.now is None:
            return False  # not known as submitted yet: its age is unknown
        submitted_at = datetime.fromtimestamp(submitted / 1000, UTC)
        return is_stuck(Status(row["status"]), submitted_at, self.now, self.stuck_after)


def row_key(row: Document) -> tuple[int, str]:
    """Newest first: by submission (first event seen for a request not yet known submitted)."""
    return (int(row.get("submitted_ms") or row.get("first_seen_ms") or 0), str(row["_id"]))


class RequestBoard:
    """The read model's store: written by the desk's projection, read by its API."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._board = db[BOARD]
        self._events = db[EVENTS]

    async def ensure_indexes(self) -> None:
        for name in ("province_code", "district_code", "status", "day"):
            await self._board.create_index(name)
        await self._events.create_index("request_id")

    # writing

    async def note(self, request_id: str, subject: Document, fields: Document, at_ms: int) -> None:
        """Sets a request's descriptive ``fields`` (and where it belongs), creating its row if
        no event of it came before; the status is left as it is."""
        await self._board.update_one(
            {"_id": request_id},
            {"$set": {**subject, **fields}, "$setOnInsert": self._fresh(at_ms)},
            upsert=True,
        )

    async def move(
        self,
        request_id: str,
        subject: Document,
        target: Status,
        at_ms: int,
        fields: Document | None = None,
    ) -> bool:
        """Moves the status to ``target`` if the machine allows it from the stored one (with
        ``fields``); False when it does not (a late event), the row left as it is. The first
        event of a request creates its row in ``target``."""
        changes = {**subject, **(fields or {}), "status": target.value}

        def allowed(current: Document) -> Change | None:
            status = Status(current["status"])
            if status is not target and not status.may_become(target):
                return None
            return Change(changes, guard={"status": status.value})

        created = {**self._fresh(at_ms), "_id": request_id, **changes}
        changed = await compare_and_set(
            self._board, request_id, allowed, projection={"status": 1}, create=created
        )
        return changed is not None and changed.written

    async def set_room(self, request_id: str, meeting_id: str, reassignment: int) -> None:
        """Shows ``meeting_id`` unless a later move of the booking is already shown."""

        def later(current: Document) -> Change | None:
            shown = current.get("reassignment")
            if shown is not None and shown > reassignment:
                return None
            fields = {"meeting_id": meeting_id, "reassignment": reassignment}
            return Change(fields, guard={"reassignment": shown})

        # no row: moves create it first, so there is nothing to show a room on
        await compare_and_set(self._board, request_id, later, projection={"reassignment": 1})

    async def record_event(self, entry: Document) -> None:
        """Adds one history entry once (``_id`` is the CloudEvent id)."""
        with contextlib.suppress(DuplicateKeyError):  # a redelivery: already told
            await self._events.insert_one(entry)

    @staticmethod
    def _fresh(at_ms: int) -> Document:
        return {"first_seen_ms": at_ms, "reassignment": None, "meeting_id": None}

    # reading

    async def page(
        self, query: BoardQuery, *, after: tuple[int, str] | None, limit: int
    ) -> tuple[list[Document], tuple[int, str] | None]:
        """Up to ``limit`` rows newest first after a page's last key, and the key of the last
        row when more may follow."""
        rows = [
            row
            for row in await self._candidates(query)
            if query.shows(row) and (after is None or row_key(row) < after)
        ]
        rows.sort(key=row_key, reverse=True)
        shown = rows[:limit]
        more = len(rows) > limit
        return shown, (row_key(shown[-1]) if more else None)

    async def _candidates(self, query: BoardQuery) -> list[Document]:
        """Everything the most selective indexed filter given finds (never a full scan for a
        regional operator: one equality per province of theirs)."""
        if query.district is not None:
            return await self._find({"district_code": query.district})
        if query.day is not None:
            return await self._find({"day": query.day.isoformat()})
        if query.province is not None:
            return await self._find({"province_code": query.province})
        if not query.scope.national:
            found: list[Document] = []
            for province in sorted(query.scope.provinces):
                found += await self._find({"province_code": province})
            return found
        if query.status is not None:
            return await self._find({"status": query.status.value})
        return await self._find({})

    async def _find(self, filters: Document) -> list[Document]:
        return [row async for row in self._board.find(filters)]

    async def row(self, request_id: str) -> Document | None:
        return await self._board.find_one({"_id": request_id})

    async def events(self, request_id: str) -> list[Document]:
        """The history entries of one request, in the order they happened."""
        found = [e async for e in self._events.find({"request_id": request_id})]
        return sorted(found, key=lambda e: (e["at_ms"], e.get("seq", 0), e["_id"]))


def bangkok_day(moment: datetime) -> str:
    """The Asia/Bangkok day a meeting starts on (``?date=`` filters on it)."""
    return moment.astimezone(BANGKOK).date().isoformat()
