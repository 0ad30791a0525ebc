"""The notifier's send claim on the real store: one holder at a time, taken over once its
lease has run out (a notifier that died while sending), never once the mail is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from vcs_notifier.store import MongoDeliveryStore
from vcs_shared.events import Contact, RequestSubmitted, Urgency
from vcs_shared.store import database_name

pytestmark = pytest.mark.integration

Document = dict[str, Any]
LEASE = timedelta(seconds=30)


def submitted(request_id: str) -> RequestSubmitted:
    now = datetime.now(UTC)
    return RequestSubmitted(
        request_id=request_id,
        province_code="47",
        district_code="4701",
        title="claim",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
        participants=10,
        urgency=Urgency.normal,
        needs_support=False,
        contact=Contact(name="x", email="x@example.go.th", phone="042-000000"),
        submitted_at=now,
    )


async def test_one_claim_at_a_time_a_stale_one_is_taken_over_a_recorded_mail_never(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    store = MongoDeliveryStore(mongo[database_name(namespace, "notifier")])
    await store.ensure_indexes()
    await store.remember_request(submitted("r-1"))

    assert await store.claim("r-1", "assigned", LEASE)
    assert not await store.claim("r-1", "assigned", LEASE)  # a concurrent copy waits
    assert await store.claim("r-1", "released", LEASE)  # another kind of mail is separate
    later = datetime.now(UTC) + LEASE + timedelta(seconds=2)
    assert await store.claim("r-1", "assigned", LEASE, now=later)  # the holder's lease ran out

    written = await store.record_outcome("r-1", "assigned", {"state": "delivered"}, [])
    assert written == []
    assert not await store.claim("r-1", "assigned", LEASE, now=later + LEASE * 2)  # recorded
    assert await store.record_outcome("r-1", "assigned", {"state": "delivered"}, []) is None
    assert not await store.claim("r-2", "assigned", LEASE)  # no contact known: nothing to send
