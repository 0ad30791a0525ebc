"""Exactly the store operations DOPA VCS relies on, against whatever store is configured.

Runs against the embedded ``nx-27017`` server by default and against a real
MongoDB when ``VCS_MONGODB_URL`` is set, so a change of store is checked here
first. Every operation below is used by a service; nothing outside this list
should be used without adding it here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

from vcs_shared.store import Document, epoch_ms

pytestmark = pytest.mark.contract

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def db(mongo: AsyncMongoClient[Document], namespace: str) -> Any:
    return mongo[f"{namespace}_allocator"]


async def test_unique_index_refuses_a_second_document(db: Any) -> None:
    await db.requests.create_index("idempotency_key", unique=True)
    await db.requests.insert_one({"_id": "r1", "idempotency_key": "4701:k"})

    with pytest.raises(DuplicateKeyError) as raised:
        await db.requests.insert_one({"_id": "r2", "idempotency_key": "4701:k"})

    assert raised.value.code == 11000
    assert await db.requests.count_documents({}) == 1


async def test_duplicate_id_is_refused(db: Any) -> None:
    await db.decisions.insert_one({"_id": "r1", "outcome": "assigned"})

    with pytest.raises(DuplicateKeyError):
        await db.decisions.insert_one({"_id": "r1", "outcome": "rejected"})

    assert (await db.decisions.find_one({"_id": "r1"}))["outcome"] == "assigned"


async def test_compound_unique_index_under_unordered_insert_many(db: Any) -> None:
    await db.slots.create_index([("meeting_id", ASCENDING), ("slot", ASCENDING)], unique=True)
    await db.slots.insert_one({"_id": ObjectId(), "meeting_id": "111111111", "slot": T0})
    batch = [
        {"_id": ObjectId(), "meeting_id": "111111111", "slot": T0 + timedelta(minutes=5 * i)}
        for i in range(3)
    ]

    with pytest.raises(BulkWriteError) as raised:
        await db.slots.insert_many(batch, ordered=False)

    errors = raised.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(0, 11000)]
    assert await db.slots.count_documents({"meeting_id": "111111111"}) == 3


async def test_range_and_in_queries_on_aware_datetimes(db: Any) -> None:
    await db.slots.insert_many(
        [
            {"meeting_id": m, "slot": T0 + timedelta(minutes=5 * i), "request_id": "r"}
            for m in ("111111111", "222222222")
            for i in range(4)
        ]
    )

    cursor = db.slots.find(
        {
            "meeting_id": {"$in": ["111111111"]},
            "slot": {"$gte": T0 + timedelta(minutes=5), "$lt": T0 + timedelta(minutes=15)},
        },
        {"meeting_id": 1, "slot": 1, "_id": 0},
    )
    found = [doc async for doc in cursor]

    assert [d["slot"] for d in found] == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    assert found[0]["slot"].tzinfo is not None


async def test_delete_many_by_ids_and_by_field(db: Any) -> None:
    ids = [ObjectId() for _ in range(3)]
    await db.slots.insert_many([{"_id": i, "request_id": "r1"} for i in ids])
    await db.slots.insert_one({"request_id": "r2"})

    by_ids = await db.slots.delete_many({"_id": {"$in": ids[:2]}})
    by_field = await db.slots.delete_many({"request_id": "r1"})

    assert (by_ids.deleted_count, by_field.deleted_count) == (2, 1)
    assert await db.slots.count_documents({}) == 1


async def test_outbox_pending_documents_are_found_and_marked_by_compare_and_set(db: Any) -> None:
    await db.requests.create_index("outbox_pending")
    entries = [{"id": "e1", "sent": False}, {"id": "e2", "sent": False}]
    await db.requests.insert_one(
        {"_id": "r1", "outbox": entries, "outbox_pending": True, "outbox_count": 2}
    )
    await db.requests.insert_one(
        {
            "_id": "r2",
            "outbox": [{"id": "e3", "sent": True}],
            "outbox_pending": False,
            "outbox_count": 1,
        }
    )

    pending = [doc["_id"] async for doc in db.requests.find({"outbox_pending": True})]
    stale = await db.requests.update_one(
        {"_id": "r1", "outbox_count": 1}, {"$set": {"outbox_pending": False}}
    )
    marked = await db.requests.update_one(
        {"_id": "r1", "outbox_count": 2},
        {"$set": {"outbox": [{"id": "e1", "sent": True}, entries[1]], "outbox_pending": True}},
    )

    assert pending == ["r1"]
    assert (stale.modified_count, marked.modified_count) == (0, 1)
    stored = await db.requests.find_one({"_id": "r1"})
    assert [e["sent"] for e in stored["outbox"]] == [True, False]


async def test_whole_array_set_with_compare_and_set_on_status(db: Any) -> None:
    await db.requests.insert_one({"_id": "r1", "status": "assigned", "outbox": [{"id": "e1"}]})

    stale = await db.requests.update_one(
        {"_id": "r1", "status": "submitted"}, {"$set": {"status": "cancelled"}}
    )
    fresh = await db.requests.update_one(
        {"_id": "r1", "status": "assigned"},
        {"$set": {"status": "cancelled", "outbox": [{"id": "e1"}, {"id": "e2"}]}},
    )
    # compare_and_set counts a write whose guard held as done, even when it changed nothing
    again = await db.requests.update_one(
        {"_id": "r1", "status": "cancelled"}, {"$set": {"status": "cancelled"}}
    )

    assert (stale.modified_count, fresh.modified_count) == (0, 1)
    assert (stale.matched_count, fresh.matched_count, again.matched_count) == (0, 1, 1)
    stored = await db.requests.find_one({"_id": "r1"})
    assert [e["id"] for e in stored["outbox"]] == ["e1", "e2"]


async def test_status_filters_with_in_and_nin(db: Any) -> None:
    await db.requests.insert_one({"_id": "r1", "status": "delivered"})

    backwards = await db.requests.update_one(
        {"_id": "r1", "status": {"$in": ["submitted"]}}, {"$set": {"status": "assigned"}}
    )
    sideways = await db.requests.update_one(
        {"_id": "r1", "status": {"$nin": ["cancelled", "rejected"]}},
        {"$set": {"assignment": {"meeting_id": "111111111"}}},
    )

    assert (backwards.modified_count, sideways.modified_count) == (0, 1)
    stored = await db.requests.find_one({"_id": "r1"})
    assert stored["status"] == "delivered"
    assert stored["assignment"] == {"meeting_id": "111111111"}


async def test_set_on_insert_upsert_keeps_the_first_values(db: Any) -> None:
    for title in ("first", "second"):
        await db.deliveries.update_one(
            {"_id": "r1"}, {"$setOnInsert": {"title": title, "outbox": []}}, upsert=True
        )

    stored = await db.deliveries.find_one({"_id": "r1"})
    assert stored["title"] == "first"


async def test_set_only_when_a_field_is_missing(db: Any) -> None:
    await db.deliveries.insert_one({"_id": "r1"})

    first = await db.deliveries.update_one(
        {"_id": "r1", "assigned": {"$exists": False}}, {"$set": {"assigned": {"state": "ok"}}}
    )
    second = await db.deliveries.update_one(
        {"_id": "r1", "assigned": {"$exists": False}}, {"$set": {"assigned": {"state": "again"}}}
    )

    assert (first.modified_count, second.modified_count) == (1, 0)


async def test_pool_replacement_operations(db: Any) -> None:
    await db.rooms.create_index([("pool", ASCENDING), ("active", ASCENDING)])
    for meeting_id in ("111111111", "222222222"):
        await db.rooms.replace_one(
            {"_id": meeting_id},
            {"_id": meeting_id, "pool": "47", "capacity": 300, "active": True},
            upsert=True,
        )

    deactivated = await db.rooms.update_many(
        {"_id": {"$nin": ["111111111"]}}, {"$set": {"active": False}}
    )
    active = [d["_id"] async for d in db.rooms.find({"pool": {"$in": ["47"]}, "active": True})]

    assert deactivated.modified_count == 1
    assert active == ["111111111"]
    assert await db.rooms.count_documents({}) == 2


async def test_find_with_limit_and_update_many_on_flag(db: Any) -> None:
    old = epoch_ms(T0 - timedelta(hours=1))
    await db.slots.insert_many(
        [{"request_id": "r1", "confirmed": False, "claimed_ms": old} for _ in range(3)]
    )

    cursor = db.slots.find({"confirmed": False, "claimed_ms": {"$lt": epoch_ms(T0)}}).limit(2)
    found = [doc async for doc in cursor]
    confirmed = await db.slots.update_many(
        {"request_id": "r1", "confirmed": False}, {"$set": {"confirmed": True}}
    )

    assert len(found) == 2
    assert confirmed.modified_count == 3


async def test_a_lease_set_with_set_is_taken_over_only_once_it_ran_out(db: Any) -> None:
    """The notifier's send claim: epoch milliseconds written by ``$set``, compared in an
    update filter to the millisecond."""
    await db.deliveries.insert_one({"_id": "r1"})

    async def claim(now: datetime, lease: timedelta) -> bool:
        for held in ({"$exists": False}, {"$lt": epoch_ms(now - lease)}):
            result = await db.deliveries.update_one(
                {"_id": "r1", "assigned_claimed_ms": held},
                {"$set": {"assigned_claimed_ms": epoch_ms(now)}},
            )
            if result.modified_count == 1:
                return True
        return False

    lease = timedelta(milliseconds=500)
    assert await claim(T0, lease)
    assert not await claim(T0 + timedelta(milliseconds=499), lease)
    assert await claim(T0 + timedelta(milliseconds=501), lease)


async def test_ping_answers(mongo: AsyncMongoClient[Document]) -> None:
    assert (await mongo.admin.command("ping"))["ok"] == 1


async def test_set_keeps_datetimes_inside_sub_documents_and_booleans_queryable(db: Any) -> None:
    """Top-level (or dotted) ``$set`` of a datetime is stored as a string by nx-27017, and a
    boolean comes back as 0/1: the services write timestamps inside a sub-document
    (``{"cancellation": {"at": …}}``) and only ever query booleans, never read them back
    as ``bool``."""
    await db.requests.insert_one({"_id": "r1", "outbox_pending": False, "released": False})

    await db.requests.update_one(
        {"_id": "r1"},
        {"$set": {"cancellation": {"at": T0, "by": "office"}, "outbox_pending": True}},
    )

    stored = await db.requests.find_one({"_id": "r1"})
    assert stored["cancellation"]["at"] == T0
    assert stored["outbox_pending"]
    assert [d["_id"] async for d in db.requests.find({"outbox_pending": True})] == ["r1"]
    assert [d["_id"] async for d in db.requests.find({"released": False})] == ["r1"]
