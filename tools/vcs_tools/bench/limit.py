"""The store's own limit: the minimal writes a request needs, done by a bare client.

For each request, on the same store and at the same concurrency as the burst,
the nine commands no implementation of the path can avoid: insert the request
(with its outbox entry), insert its slot documents keyed by their slot id under
the unique ``(meeting_id, slot)`` index (one ``insert_many``), insert the decision, insert the
delivery, then mark the request assigned and delivered and each of the three
outbox entries sent. The full path is measured against this, not against the
allocator's own code (which carries the same overheads as the path).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from vcs_allocator.store import slot_id
from vcs_shared.store import Document, make_client
from vcs_tools.bench.workload import Ask

COMMANDS_PER_REQUEST = 9
SLOT_MINUTES = 5


@dataclass(frozen=True, slots=True)
class StoreLimit:
    requests: int
    concurrency: int
    seconds: float


async def measure_store_limit(
    mongodb_url: str, asks: Sequence[Ask], *, concurrency: int
) -> StoreLimit:
    database = f"bench_limit_{uuid.uuid4().hex[:8]}"
    client = make_client(mongodb_url, app_name="bench-limit")
    db = client[database]
    try:
        await db.slots.create_index([("meeting_id", 1), ("slot", 1)], unique=True)
        await db.requests.create_index("outbox_pending")
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int, ask: Ask) -> None:
            async with gate:
                await _request(db, index, ask)

        started = time.perf_counter()
        await asyncio.gather(*(one(i, a) for i, a in enumerate(asks)))
        return StoreLimit(len(asks), concurrency, time.perf_counter() - started)
    finally:
        await client.drop_database(database)
        await client.close()


async def _request(db: AsyncDatabase[Document], index: int, ask: Ask) -> None:
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    entry = {"id": str(uuid.uuid4()), "sent": False, "created_at": now, "body": "{}"}
    requests, slots, decisions, deliveries = db.requests, db.slots, db.decisions, db.deliveries
    await requests.insert_one(
        {"_id": request_id, "status": "submitted", "outbox": [entry], "outbox_pending": True}
    )
    first = int(ask.starts_at.timestamp() // 60)
    last = int(ask.ends_at.timestamp() // 60)
    meeting_id = f"room-{index}"  # one room each: the limit has no contention to lose to
    await slots.insert_many(
        [
            {
                "_id": slot_id(meeting_id, minute),
                "meeting_id": meeting_id,
                "slot": minute,
                "request_id": request_id,
            }
            for minute in range(first, last, SLOT_MINUTES)
        ],
        ordered=True,
    )
    await decisions.insert_one(
        {"_id": request_id, "meeting_id": meeting_id, "outbox": [entry], "outbox_pending": True}
    )
    await deliveries.insert_one({"_id": request_id, "outbox": [entry], "outbox_pending": True})
    for collection in (decisions, deliveries):
        await collection.update_one(
            {"_id": request_id}, {"$set": {"outbox.0.sent": True, "outbox_pending": False}}
        )
    for status in ("assigned", "delivered"):
        await requests.update_one({"_id": request_id}, {"$set": {"status": status}})
    await requests.update_one(
        {"_id": request_id}, {"$set": {"outbox.0.sent": True, "outbox_pending": False}}
    )
