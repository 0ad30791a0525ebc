"""The notifier remembers the requests submitted at the same moment, and records the outcomes
of mails sent at the same moment, in shared writes, on the real store: every contact is kept
once (a redelivered ``request.submitted`` is no error), every outcome is recorded once with
its event, a wrong guess among them (an outcome recorded before) changes nothing, and the
others of its batch still know their write took effect (so their events are published at
once, not left to the sweep).

The store's ``insert`` and ``update`` commands are counted with pymongo's command
monitoring, as the benchmark counts them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from tests.support.events import CONTACT, request_submitted
from tests.support.store_commands import CommandsTo
from vcs_notifier.domain import Delivery, MailKind, MailOutcome
from vcs_notifier.store import MongoDeliveryStore
from vcs_shared.events import CredentialsDelivered
from vcs_shared.outbox import Announcement, announce
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration

DELIVERIES = 30
RECORDED_BEFORE = "r-5"  # not the first: it shares its batch with others


def delivered(delivery: Delivery, at: datetime) -> Announcement:
    event = CredentialsDelivered(**delivery.subject(), channel="email", delivered_at=at)
    return announce(event, correlation_id=delivery.request_id)


async def test_contacts_and_outcomes_written_at_once_share_writes_each_once(
    mongodb_url: str, namespace: str
) -> None:
    inserts, updates = CommandsTo("insert", "deliveries"), CommandsTo("update", "deliveries")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[inserts, updates]
    )
    db = client[database_name(namespace, "notifier")]
    try:
        store = MongoDeliveryStore(db)  # offline: the entries wait in the outbox for a relay
        await store.ensure_indexes()
        now = datetime.now(UTC)
        deliveries = [
            Delivery.of(request_submitted(f"r-{n}", now + timedelta(days=1)), CONTACT, at=now)
            for n in range(DELIVERIES)
        ]
        await store.remember(deliveries[0])
        inserts.sent.clear()
        await asyncio.gather(*(store.remember(d) for d in [*deliveries, deliveries[0]]))
        assert inserts.commands < DELIVERIES
        assert sorted([d["_id"] async for d in db["deliveries"].find({}, {"_id": 1})]) == sorted(
            d.request_id for d in deliveries
        )
        outcome = MailOutcome(MailKind.assigned, "delivered", at=now)
        before = next(d for d in deliveries if d.request_id == RECORDED_BEFORE)
        assert await store.record_outcome(RECORDED_BEFORE, outcome, delivered(before, now))
        updates.sent.clear()

        # each handler saw no outcome on its delivery (one of them wrongly: recorded meanwhile)
        written = await asyncio.gather(
            *(
                store.record_outcome(d.request_id, outcome, delivered(d, now), first=True)
                for d in deliveries
            )
        )

        assert [d.request_id for d, w in zip(deliveries, written, strict=True) if not w] == [
            RECORDED_BEFORE
        ]
        assert updates.commands < DELIVERIES
        async for document in db["deliveries"].find({}):
            assert document[MailKind.assigned]["state"] == "delivered"
            assert [e["routing_key"].split(".")[:2] for e in document["outbox"]] == [
                ["credentials", "delivered"]
            ]
    finally:
        await client.drop_database(database_name(namespace, "notifier"))
        await client.close()
