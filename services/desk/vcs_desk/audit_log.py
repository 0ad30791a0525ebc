"""The audit log: every operator action, append-only, in the desk's ``audit`` collection.

An entry's ``_id`` is the CloudEvent id of its ``audit.recorded`` (the desk's own
actions, which it appends directly, get a fresh one), so a redelivered or republished
entry is a duplicate key and adds nothing. Nothing here updates or deletes an entry, and
no route does: the log only grows.

Reading follows the store's limits: the one indexed field a query filters on is
``action`` when asked for, else ``at_ms`` (integer epoch milliseconds, never a datetime);
the caller's provinces and the actor are checked here, on each entry, newest first,
until a page is full (keyset pagination on ``(at_ms, _id)``, like the request lists).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.scope import Scope
from vcs_shared.store import Document

COLLECTION = "audit"


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    """An entry as the log holds it: its id, the service it came from, and the entry."""

    entry_id: str
    source: str
    entry: AuditRecorded

    @property
    def key(self) -> tuple[int, str]:
        return (_ms(self.entry), self.entry_id)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """The filters of a listing: the caller's scope, and what the operator asked for."""

    scope: Scope
    actor: str | None = None
    """An actor's id (``operator:somsri``, ``person:…``) or name, exactly."""
    action: AuditAction | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    """Exclusive upper bound."""

    def shows(self, entry: AuditRecorded) -> bool:
        if not (self.scope.national or self.scope.provinces.intersection(entry.provinces)):
            return False
        return self.actor is None or self.actor in (entry.actor.id, entry.actor.name)


class AuditLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._entries = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._entries.create_index("at_ms")
        await self._entries.create_index("action")
        await self._entries.create_index("target_key")

    async def append(self, entry: AuditRecorded, *, entry_id: str, source: str) -> bool:
        """Adds the entry once; False when an entry with this id is already there."""
        try:
            await self._entries.insert_one(_to_document(entry, entry_id, source))
        except DuplicateKeyError:
            return False
        return True

    async def record(self, entry: AuditRecorded) -> None:
        """The desk's own actions (a dead-letter replay) go straight into its own log."""
        await self.append(entry, entry_id=str(uuid.uuid4()), source="/dopa-vcs/desk")

    async def about(self, kind: str, target_id: str) -> list[LoggedEntry]:
        """Every entry whose target is that object (a request's history shows who cancelled,
        moved or resent it), oldest first; one indexed equality."""
        found = self._entries.find({"target_key": _target_key(kind, target_id)})
        return sorted([_from_document(d) async for d in found], key=lambda e: e.key)

    async def newest(
        self, query: AuditQuery, *, after: tuple[int, str] | None, limit: int
    ) -> list[LoggedEntry]:
        """Up to ``limit`` entries the query shows, newest first, after a page's last key."""
        found: list[LoggedEntry] = []
        async for logged in self._scan(query, after):
            if query.shows(logged.entry):
                found.append(logged)
                if len(found) == limit:
                    break
        return found

    async def _scan(
        self, query: AuditQuery, after: tuple[int, str] | None
    ) -> AsyncIterator[LoggedEntry]:
        window: Document = {}
        if query.from_ms is not None:
            window["$gte"] = query.from_ms
        upper = query.to_ms
        if after is not None:
            upper = after[0] + 1 if upper is None else min(upper, after[0] + 1)
        if upper is not None:
            window["$lt"] = upper
        filters: Document = {"action": query.action.value} if query.action else {}
        if window:
            filters["at_ms"] = window
        cursor = self._entries.find(filters).sort([("at_ms", -1), ("_id", -1)])
        async for document in cursor:
            logged = _from_document(document)
            if after is not None and logged.key >= after:
                continue  # the same millisecond as the last one shown, and not after it
            yield logged


def _target_key(kind: str, target_id: str) -> str:
    """One indexed field for the target (the store's indexes serve a single field only)."""
    return f"{kind}:{target_id}"


def _ms(entry: AuditRecorded) -> int:
    return int(entry.at.timestamp() * 1000)


# The mapping between an entry and its document.


def _to_document(entry: AuditRecorded, entry_id: str, source: str) -> Document:
    return {
        "_id": entry_id,
        "source": source,
        "at_ms": _ms(entry),
        "at": entry.at.isoformat(),
        "action": entry.action.value,
        "outcome": entry.outcome,
        "actor": entry.actor.model_dump(),
        "target": entry.target.model_dump(),
        "target_key": _target_key(entry.target.kind, entry.target.id),
        "provinces": list(entry.provinces),
        "before": entry.before,
        "after": entry.after,
        "detail": entry.detail,
    }


def _from_document(document: Document) -> LoggedEntry:
    entry = AuditRecorded(
        actor=Actor.model_validate(document["actor"]),
        action=AuditAction(document["action"]),
        outcome=document["outcome"],
        target=Target.model_validate(document["target"]),
        provinces=tuple(document.get("provinces") or ()),
        before=document.get("before"),
        after=document.get("after"),
        detail=document.get("detail"),
        at=document["at"],
    )
    return LoggedEntry(entry_id=str(document["_id"]), source=document["source"], entry=entry)
