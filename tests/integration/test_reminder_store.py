"""The reminders' durable schedule on the real store: scheduling twice keeps one, the bookings
scheduled at once share insert commands, of every notifier claiming a due reminder at once one
gets it, a claim whose holder died is taken over after the lease, a finished or withdrawn
reminder is never due again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from tests.support.store_commands import WritesTo
from vcs_notifier.reminders import parse_leads, plan
from vcs_notifier.store import MongoReminderStore, reminder_to_document
from vcs_shared.events import ReminderSent
from vcs_shared.outbox import announce
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=30)


async def test_a_due_reminder_is_claimed_once_and_never_due_again(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    store = MongoReminderStore(mongo[database_name(namespace, "notifier")])
    await store.ensure_indexes()
    now = datetime.now(UTC)
    starts_at = now + timedelta(hours=2, seconds=-1)  # the 2h reminder is due now
    leads = parse_leads("1d,2h,30m")  # 1d is already past: no reminder
    planned = plan("r-1", starts_at, leads, now=now - timedelta(seconds=2))
    assert [r.reminder_id for r in planned] == ["r-1:2h", "r-1:30m"]
    await store.schedule(planned)
    await store.schedule(planned)  # a redelivered room.assigned

    [due] = await store.due(now, limit=10)
    assert due.reminder_id == "r-1:2h"
    assert due.lead == timedelta(hours=2)

    claims = await asyncio.gather(*(store.claim(due.reminder_id, LEASE, now=now) for _ in range(8)))
    assert claims.count(True) == 1
    later = now + LEASE + timedelta(seconds=1)
    assert await store.claim(due.reminder_id, LEASE, now=later)  # its holder died
    await store.finish(due.reminder_id, "sent", at=later)
    assert await store.due(later, limit=10) == []
    assert not await store.claim(due.reminder_id, LEASE, now=later + LEASE * 2)

    assert await store.withdraw("r-1", at=later) == 1  # the 30m one, not sent yet
    assert await store.due(starts_at, limit=10) == []


async def test_a_finished_reminder_announces_once(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    db = mongo[database_name(namespace, "notifier")]
    store = MongoReminderStore(db)  # offline: the entries wait in the outbox for a relay
    await store.ensure_indexes()
    now = datetime.now(UTC)
    [reminder] = plan("r-3", now + timedelta(minutes=30), parse_leads("30m"), now=now - LEASE)
    await store.schedule([reminder])
    reminded = ReminderSent(
        request_id="r-3",
        province_code="47",
        district_code="4701",
        lead="30m",
        meeting_id="111111111",
        starts_at=now + timedelta(minutes=30),
        ends_at=now + timedelta(hours=1),
        sent_at=now,
    )
    announcement = announce(reminded, correlation_id="r-3")

    await store.finish(reminder.reminder_id, "sent", at=now, announcement=announcement)
    # a second process whose lease ran out finishes it too: no second announcement
    await store.finish(reminder.reminder_id, "failed", at=now, announcement=announcement)

    document = await db["reminders"].find_one({"_id": reminder.reminder_id})
    assert document is not None
    assert document["state"] == "sent"
    assert [e["routing_key"] for e in document["outbox"]] == ["reminder.sent.47.4701"]

    # One scheduled by a notifier before reminders had an outbox is finished all the same
    # (were it not, it would be claimed and sent again after every lease).
    [older] = plan("r-4", now + timedelta(minutes=30), parse_leads("30m"), now=now - LEASE)
    await db["reminders"].insert_one(reminder_to_document(older))
    await store.finish(older.reminder_id, "sent", at=now, announcement=announcement)
    finished = await db["reminders"].find_one({"_id": older.reminder_id})
    assert finished is not None
    assert finished["state"] == "sent"
    assert len(finished["outbox"]) == 1


async def test_scheduling_again_after_a_partial_schedule_adds_only_what_is_missing(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    """The reminders go in one unordered write: one already there (an earlier attempt that
    stored part of them) is refused alone, the others are stored, and nothing is raised."""
    db = mongo[database_name(namespace, "notifier")]
    store = MongoReminderStore(db)
    await store.ensure_indexes()
    now = datetime.now(UTC)
    planned = plan("r-2", now + timedelta(days=3), parse_leads("1d,2h,30m"), now=now)
    assert len(planned) == 3
    await store.schedule(planned[1:2])

    await store.schedule(planned)

    stored = sorted([d["_id"] async for d in db["reminders"].find({"request_id": "r-2"})])
    assert stored == sorted(r.reminder_id for r in planned)


async def test_bookings_scheduled_at_once_share_insert_commands_and_each_reminder_is_stored_once(
    mongodb_url: str, namespace: str
) -> None:
    """Concurrent bookings (some of them a redelivered ``room.assigned``, whose reminders are
    there already) are scheduled in a few shared writes; every call returns with its own
    reminders stored, none twice, and the duplicates of the redeliveries are no error."""
    inserts = WritesTo("insert", "reminders")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[inserts]
    )
    db = client[database_name(namespace, "notifier")]
    try:
        store = MongoReminderStore(db)
        await store.ensure_indexes()
        now = datetime.now(UTC)
        leads = parse_leads("1d,30m")
        bookings = [plan(f"b-{n}", now + timedelta(days=2), leads, now=now) for n in range(30)]
        await store.schedule(bookings[0])
        inserts.sent.clear()

        await asyncio.gather(*(store.schedule(planned) for planned in [*bookings, bookings[0]]))

        assert inserts.commands < len(bookings)
        stored = [d["_id"] async for d in db["reminders"].find({}, {"_id": 1})]
        assert sorted(stored) == sorted(r.reminder_id for p in bookings for r in p)
    finally:
        await client.drop_database(database_name(namespace, "notifier"))
        await client.close()
