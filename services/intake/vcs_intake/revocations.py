"""The intake's revocation list: ids (``jti``) of tokens refused before they expire.

Kept in the intake's own store, collection ``revoked_tokens``, one document per
revoked token. A TTL index drops an entry once the token it names has expired
anyway, so the list stays as small as the set of live revoked tokens.

The front door checks every HTTP request against it, so the intake does not read the
store per request: it keeps the whole list (the ids only) and reads it again when its
copy is older than :data:`MAX_AGE` seconds, at most once per that time however many
requests come in. A revocation (``vcs token revoke``, another process) therefore takes
effect within about two seconds, not on the very next request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from vcs_shared.store import Document

MAX_AGE = 2.0
"""Seconds a copy of the list answers for; the longest a revoked token still gets through."""


class MongoRevocationList:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.revoked = db["revoked_tokens"]
        self._max_age = max_age
        self._clock = clock
        self._ids: frozenset[str] = frozenset()
        self._read_at: float | None = None
        """When the read that gave ``_ids`` started (None: not read yet, or written since)."""
        self._reading = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        await self.revoked.create_index("expires_at", expireAfterSeconds=0)

    async def is_revoked(self, jti: str) -> bool:
        return jti in await self._current()

    async def _current(self) -> frozenset[str]:
        """The revoked ids as read at most ``max_age`` seconds ago; one read serves every
        request waiting for it."""
        if self._fresh():
            return self._ids
        async with self._reading:
            if not self._fresh():
                started = self._clock()
                cursor = self.revoked.find({}, {"_id": 1})
                self._ids = frozenset([str(document["_id"]) async for document in cursor])
                self._read_at = started
        return self._ids

    def _fresh(self) -> bool:
        return self._read_at is not None and self._clock() - self._read_at < self._max_age

    async def revoke(
        self, jti: str, *, expires_at: datetime | None, subject: str | None, by: str
    ) -> bool:
        """Revokes the token; ``False`` when it already was. Without a known expiry
        (only the id was given) the entry is kept for good."""
        entry: Document = {"revoked_at": datetime.now(UTC), "revoked_by": by, "subject": subject}
        if expires_at is not None:
            entry["expires_at"] = expires_at
        result = await self.revoked.update_one({"_id": jti}, {"$setOnInsert": entry}, upsert=True)
        self._read_at = None  # this process sees its own revocation at once
        return result.upserted_id is not None
