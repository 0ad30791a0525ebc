"""Zoom's per-host daily allowance of meeting updates, counted in the allocator's store.

Why: Zoom lets each host (the user owning a meeting) update its meetings about 100 times a
day (``VCS_ZOOM_DAILY_LIMIT_PER_HOST``), a day that resets at 00:00 UTC; past it Zoom answers
``429`` until tomorrow. Counting what the allocator spends lets it prefer rooms of hosts with
allowance left (spreading bookings over hosts) and fall back before Zoom refuses, across any
number of allocator processes.

Collection ``zoom_host_days``: one document per host and UTC day, ``_id`` = ``<host>|<day>``,
``{"host", "day", "count"}``. :meth:`HostBudget.take` is a compare-and-set: it increments
``count`` only where it is still below the limit (an upsert whose filter demands it); when the
day's document is full the upsert collides with it on ``_id`` and the duplicate-key error means
"no allowance left", so two processes can never spend more than the limit between them. Reads
use ``$in`` on ``_id`` only (the store's index rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_shared.store import Document

COLLECTION = "zoom_host_days"


def _key(host: str, day: date) -> str:
    return f"{host}|{day.isoformat()}"


class HostBudget:
    """Per host and UTC day, how many meeting updates are spent of ``limit``."""

    def __init__(self, db: AsyncDatabase[Document], *, limit: int) -> None:
        self._days = db[COLLECTION]
        self.limit = limit

    async def take(self, host: str, day: date) -> bool:
        """Spends one update of ``host`` on ``day``; False (nothing spent) when none is left."""
        try:
            await self._days.update_one(
                {"_id": _key(host, day), "count": {"$lt": self.limit}},
                {"$inc": {"count": 1}, "$setOnInsert": {"host": host, "day": day.isoformat()}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def left(self, hosts: Iterable[str], day: date) -> dict[str, int]:
        """Updates each host has left on ``day`` (the limit for a host not yet counted)."""
        wanted = sorted(set(hosts))
        spent = {
            str(doc["host"]): int(doc["count"])
            async for doc in self._days.find({"_id": {"$in": [_key(h, day) for h in wanted]}})
        }
        return {host: max(0, self.limit - spent.get(host, 0)) for host in wanted}
