"""The floor: the allocator's own handler and store code, called directly in this process.

No HTTP and no broker: each ``request.submitted`` is handed to
:func:`vcs_allocator.handlers.allocate` as the consumer would hand it, with a
publisher that drops what it is given. The outbox bookkeeping stays (the
decision is written with its outbox entry and the entry is marked sent),
because the allocator cannot skip those store writes; only the broker is left
out. Requests are allocated one after the other, and optionally also with N
at once (``--floor-concurrency``); the faster run is the floor, the least the
job costs on this store. On the embedded store one after the other is the
faster: it executes one command at a time, and concurrent allocations in one
province race for the same best-fit room.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from vcs_allocator.domain import AllocationPolicy, PoolEntry
from vcs_allocator.handlers import AllocatorDeps, allocate
from vcs_allocator.store import MongoReservationStore
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.envelope import Envelope, OutgoingMessage
from vcs_shared.events import RequestSubmitted
from vcs_shared.store import database_name, make_client
from vcs_tools.bench.workload import Ask


class DroppingPublisher:
    """Accepts every message and sends it nowhere: the floor has no broker."""

    async def publish(self, message: OutgoingMessage) -> None:
        return None


@dataclass(frozen=True, slots=True)
class FloorResult:
    requests: int
    concurrency: int
    seconds: float
    outcomes: dict[str, int]


async def measure_floor(
    mongodb_url: str,
    credentials_keys: str,
    rooms: Sequence[PoolEntry],
    asks: Sequence[Ask],
    *,
    concurrency: int,
) -> FloorResult:
    """Allocates ``asks`` against a fresh database holding ``rooms``; times the allocation only."""
    namespace = f"bench-floor-{uuid.uuid4().hex[:8]}"
    client = make_client(mongodb_url, app_name="bench-floor")
    name = database_name(namespace, "allocator")
    try:
        store = MongoReservationStore(client[name], DroppingPublisher())
        await store.ensure_indexes()
        sealer = CredentialsSealer(credentials_keys)
        await store.replace_rooms([room.sealed(sealer) for room in rooms])
        deps = AllocatorDeps(
            store=store,
            sealer=sealer,
            policy=AllocationPolicy(),
        )
        envelopes = [_envelope(ask.event()) for ask in asks]
        gate = asyncio.Semaphore(concurrency)

        async def one(envelope: Envelope[RequestSubmitted]) -> None:
            async with gate:
                await allocate(envelope, deps)

        started = time.perf_counter()
        await asyncio.gather(*(one(e) for e in envelopes))
        seconds = time.perf_counter() - started
        outcomes: Counter[str] = Counter()
        async for doc in store.decisions.find({}, {"outcome": 1}):
            outcomes[doc["outcome"]] += 1
        return FloorResult(len(envelopes), concurrency, seconds, dict(outcomes))
    finally:
        await client.drop_database(name)
        await client.close()


def _envelope(event: RequestSubmitted) -> Envelope[RequestSubmitted]:
    return Envelope(
        id=str(uuid.uuid4()),
        event=event,
        time=datetime.now(UTC),
        source="/dopa-vcs/intake",
        correlation_id=event.request_id,
    )
