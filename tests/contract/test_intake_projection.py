"""The intake's status projection on the real store: in order, reordered, and concurrent.

``room.assigned`` moves a submitted request to ``assigned`` with its assignment;
when ``credentials.delivered`` overtook it, the assignment is still stored and
the status does not move back. The writes of events handled at the same time
share store commands (a group commit), and each still lands.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from pymongo import AsyncMongoClient

from tests.support.store_commands import WritesTo
from vcs_intake.projection import on_credentials_delivered, on_room_assigned
from vcs_intake.store import MongoRequestStore
from vcs_shared.envelope import Envelope
from vcs_shared.events import CredentialsDelivered, Event, RoomAssigned
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.contract


E = TypeVar("E", bound=Event)


def envelope(event: E) -> Envelope[E]:
    return Envelope(
        id=str(uuid.uuid4()),
        event=event,
        time=datetime.now(UTC),
        source="/dopa-vcs/test",
        correlation_id=event.request_id,
    )


def assigned(request_id: str) -> Envelope[RoomAssigned]:
    now = datetime.now(UTC)
    return envelope(
        RoomAssigned(
            request_id=request_id,
            province_code="47",
            district_code="4701",
            meeting_id="3475946456",
            capacity=300,
            join_url="https://dopa-vcs.zoom.us/j/3475946456",
            pool="province",
            starts_at=now,
            ends_at=now,
            sealed_credentials="sealed",
        )
    )


def delivered(request_id: str) -> Envelope[CredentialsDelivered]:
    return envelope(
        CredentialsDelivered(
            request_id=request_id,
            province_code="47",
            district_code="4701",
            channel="email",
            delivered_at=datetime.now(UTC),
        )
    )


@pytest.fixture
async def store(mongo: AsyncMongoClient[Document], namespace: str) -> MongoRequestStore:
    store = MongoRequestStore(mongo[f"{namespace}_intake"])
    for request_id in ("in-order", "reordered", "cancelled"):
        status = "cancelled" if request_id == "cancelled" else "submitted"
        await store.requests.insert_one({"_id": request_id, "status": status, "assignment": None})
    return store


async def stored(store: MongoRequestStore, request_id: str) -> Document | None:
    """The request's document as stored (the fixture's documents are not whole requests)."""
    return await store.requests.find_one({"_id": request_id})


async def test_room_assigned_moves_a_submitted_request_with_its_assignment(
    store: MongoRequestStore,
) -> None:
    await on_room_assigned(assigned("in-order"), store)

    document = await stored(store, "in-order")
    assert document is not None
    assert document["status"] == "assigned"
    assert document["assignment"]["meeting_id"] == "3475946456"


async def test_a_late_room_assigned_keeps_delivered_and_still_stores_the_assignment(
    store: MongoRequestStore,
) -> None:
    await on_credentials_delivered(delivered("reordered"), store)
    await on_room_assigned(assigned("reordered"), store)

    document = await stored(store, "reordered")
    assert document is not None
    assert document["status"] == "delivered"
    assert document["assignment"]["meeting_id"] == "3475946456"


async def test_room_assigned_leaves_a_cancelled_request_alone(store: MongoRequestStore) -> None:
    await on_room_assigned(assigned("cancelled"), store)

    document = await stored(store, "cancelled")
    assert document is not None
    assert document["status"] == "cancelled"
    assert document["assignment"] is None


async def test_concurrent_events_share_writes_and_each_lands(
    mongodb_url: str, namespace: str
) -> None:
    updates = WritesTo("update", "requests")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[updates]
    )
    try:
        store = MongoRequestStore(client[database_name(namespace, "intake")])
        ids = [f"r{n}" for n in range(30)]
        await store.requests.insert_many(
            [{"_id": request_id, "status": "submitted", "assignment": None} for request_id in ids]
        )

        # Each request's room.assigned and credentials.delivered at once, in either order.
        await asyncio.gather(
            *(on_room_assigned(assigned(request_id), store) for request_id in ids),
            *(on_credentials_delivered(delivered(request_id), store) for request_id in ids[::2]),
        )
        await asyncio.gather(
            *(on_credentials_delivered(delivered(request_id), store) for request_id in ids[1::2])
        )

        documents = {d["_id"]: d async for d in store.requests.find({})}
        assert {d["status"] for d in documents.values()} == {"delivered"}
        assert {d["assignment"]["meeting_id"] for d in documents.values()} == {"3475946456"}
        # One statement per room.assigned (the move), a second (keep a late one) only when
        # its batch had a statement that matched nothing; one per delivery.
        assert 2 * len(ids) <= updates.statements <= 2 * len(ids) + len(ids)
        assert updates.commands < len(ids)

        alone = updates.statements
        await store.requests.insert_one({"_id": "alone", "status": "submitted"})
        await on_room_assigned(assigned("alone"), store)
        assert updates.statements == alone + 1  # moved: no second write
    finally:
        await client.drop_database(database_name(namespace, "intake"))
        await client.close()


async def test_ensure_indexes_drops_the_index_no_query_uses(store: MongoRequestStore) -> None:
    await store.requests.create_index([("district_code", 1), ("submitted_at", -1)])

    await store.ensure_indexes()

    fields = [
        [f for f, _ in ix["key"]] for ix in (await store.requests.index_information()).values()
    ]
    assert ["district_code", "submitted_at"] not in fields
    assert ["district_code"] in fields
