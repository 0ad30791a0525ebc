"""The notifier's send claim on the real store: one holder at a time, taken over once its
lease has run out (a notifier that died while sending), never once the mail is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from tests.support.events import CONTACT, request_submitted
from vcs_notifier.domain import Delivery, MailKind, MailOutcome
from vcs_notifier.store import MongoDeliveryStore
from vcs_shared.events import RequestSubmitted
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=30)
ASSIGNED, CANCELLED, REJECTED = MailKind.assigned, MailKind.cancelled, MailKind.rejected
DELIVERED = MailOutcome(ASSIGNED, "delivered", at=datetime.now(UTC))


def submitted(request_id: str) -> RequestSubmitted:
    return request_submitted(request_id, datetime.now(UTC) + timedelta(days=1), title="claim")


async def test_one_claim_at_a_time_a_stale_one_is_taken_over_a_recorded_mail_never(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    store = MongoDeliveryStore(mongo[database_name(namespace, "notifier")])
    await store.ensure_indexes()
    await store.remember(Delivery.of(submitted("r-1"), CONTACT, at=datetime.now(UTC)))

    assert await store.claim("r-1", ASSIGNED, LEASE)
    assert not await store.claim("r-1", ASSIGNED, LEASE)  # a concurrent copy waits
    assert await store.claim("r-1", REJECTED, LEASE)  # another kind of mail is separate
    later = datetime.now(UTC) + LEASE + timedelta(seconds=2)
    assert await store.claim("r-1", ASSIGNED, LEASE, now=later)  # the holder's lease ran out

    written = await store.record_outcome("r-1", DELIVERED)
    assert written is True
    assert not await store.claim("r-1", ASSIGNED, LEASE, now=later + LEASE * 2)  # recorded
    assert await store.record_outcome("r-1", DELIVERED) is False
    assert not await store.claim("r-2", ASSIGNED, LEASE)  # no contact known: nothing to send


async def test_credentials_and_a_cancellation_never_cross(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    """A cancellation waits while the credentials are being sent, and once it is under way no
    credentials go out: the office never gets them after being told the meeting is off."""
    store = MongoDeliveryStore(mongo[database_name(namespace, "notifier")])
    for request_id in ("sending", "cancelling"):
        await store.remember(Delivery.of(submitted(request_id), CONTACT, at=datetime.now(UTC)))

    assert await store.claim("sending", ASSIGNED, LEASE, unless=CANCELLED)
    assert not await store.claim("sending", CANCELLED, LEASE, after=ASSIGNED)  # waits
    await store.record_outcome("sending", DELIVERED)
    assert await store.claim("sending", CANCELLED, LEASE, after=ASSIGNED)  # then goes

    assert await store.claim("cancelling", CANCELLED, LEASE, after=ASSIGNED)
    assert not await store.claim("cancelling", ASSIGNED, LEASE, unless=CANCELLED)
    cancelling = await store.delivery("cancelling")
    assert cancelling is not None
    assert cancelling.cancelled
