"""The notifier's send claim on the real store: one holder at a time, taken over once its
lease has run out (a notifier that died while sending), never once the mail is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from vcs_notifier.domain import Delivery, MailKind, MailOutcome
from vcs_notifier.store import MongoDeliveryStore
from vcs_shared.events import Contact, RequestSubmitted, Urgency
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=30)
ASSIGNED, RELEASED = MailKind.assigned, MailKind.released
DELIVERED = MailOutcome(ASSIGNED, "delivered", at=datetime.now(UTC))


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
    await store.remember(Delivery.of(submitted("r-1"), at=datetime.now(UTC)))

    assert await store.claim("r-1", ASSIGNED, LEASE)
    assert not await store.claim("r-1", ASSIGNED, LEASE)  # a concurrent copy waits
    assert await store.claim("r-1", RELEASED, LEASE)  # another kind of mail is separate
    later = datetime.now(UTC) + LEASE + timedelta(seconds=2)
    assert await store.claim("r-1", ASSIGNED, LEASE, now=later)  # the holder's lease ran out

    written = await store.record_outcome("r-1", DELIVERED)
    assert written is True
    assert not await store.claim("r-1", ASSIGNED, LEASE, now=later + LEASE * 2)  # recorded
    assert await store.record_outcome("r-1", DELIVERED) is False
    assert not await store.claim("r-2", ASSIGNED, LEASE)  # no contact known: nothing to send
