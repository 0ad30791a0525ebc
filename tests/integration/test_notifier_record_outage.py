"""A store outage right after a mail went out: the notifier still records it, and sends it
once. The chaos soak's duplicate mails came from here: the outage's error left the handler,
the consumer ran it again, the handler's own send claim was still held, and once its lease
ran out the mail went out a second time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect

from tests.support.events import CONTACT, SEALER, request_submitted
from vcs_notifier.channels import Notice
from vcs_notifier.domain import Delivery, MailKind, MailOutcome
from vcs_notifier.handlers import RECORD_AFRESH_AFTER, NotifierDeps, notify_rejection
from vcs_notifier.journal import FileJournal, Sent
from vcs_notifier.store import DeliveryStore, MongoDeliveryStore, MongoReminderStore
from vcs_shared.envelope import Envelope
from vcs_shared.events import RejectionReason, RequestRejected
from vcs_shared.outbox import SILENT, Announcement
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration


class StoreLostAfterSend(MongoDeliveryStore):
    """The real store, whose first two records of an outcome fail as a frozen store fails:
    the first after its write reached the store (the reply lost), the second before."""

    failures = 2

    async def record_outcome(
        self,
        request_id: str,
        outcome: MailOutcome,
        announcement: Announcement = SILENT,
        *,
        first: bool = False,
    ) -> bool:
        if self.failures == 2:
            self.failures -= 1
            await super().record_outcome(request_id, outcome, announcement, first=first)
            raise AutoReconnect("connection closed before the reply")
        if self.failures == 1:
            self.failures -= 1
            raise AutoReconnect("store frozen")
        return await super().record_outcome(request_id, outcome, announcement, first=first)


class Outbox:
    """A channel that keeps what it was given."""

    name = "email"

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


def rejected(request_id: str) -> Envelope[RequestRejected]:
    event = RequestRejected(
        request_id=request_id,
        province_code="47",
        district_code="4701",
        reason=RejectionReason.no_room_free,
        message_th="ไม่มีห้องว่าง",
        message_en="no room free",
    )
    return Envelope(
        id=str(uuid.uuid4()), event=event, time=None, source="test", correlation_id=None
    )


async def test_a_store_outage_after_the_send_records_it_and_sends_one_mail(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    db = mongo[database_name(namespace, "notifier")]
    store = StoreLostAfterSend(db)
    await store.ensure_indexes()
    starts_at = datetime.now(UTC) + timedelta(days=1)
    submitted = request_submitted("r-lost", starts_at, title="outage")
    await store.remember(Delivery.of(submitted, CONTACT, at=datetime.now(UTC)))
    channel = Outbox()
    lease = timedelta(seconds=90)
    deps = NotifierDeps(
        store=store,
        channels=(channel,),
        sealer=SEALER,
        reminders=MongoReminderStore(db),
        claim_lease=lease,
        retry_wait=0.0,
    )

    await notify_rejection(rejected("r-lost"), deps)

    delivery = await store.delivery("r-lost")
    assert delivery is not None
    assert delivery.recorded(MailKind.rejected)
    assert store.failures == 0
    # The event again, long after the claim's lease: the record says it was sent.
    later = NotifierDeps(
        store=store,
        channels=(channel,),
        sealer=SEALER,
        reminders=MongoReminderStore(db),
        claim_lease=lease,
        clock=lambda: datetime.now(UTC) + lease * 3,
    )
    await notify_rejection(rejected("r-lost"), later)
    assert [notice.kind for notice in channel.sent] == [MailKind.rejected]


class BrokenClientStore(MongoDeliveryStore):
    """The real store over a client that a store freeze broke for good: every record fails
    as PyMongo's async client failed in the chaos soak, though the store answers again."""

    attempts = 0

    async def record_outcome(
        self,
        request_id: str,
        outcome: MailOutcome,
        announcement: Announcement = SILENT,
        *,
        first: bool = False,
    ) -> bool:
        self.attempts += 1
        raise RuntimeError("Lock is not acquired.")


async def test_a_client_broken_after_the_send_records_it_through_a_client_of_its_own(
    mongo: AsyncMongoClient[Document], mongodb_url: str, namespace: str
) -> None:
    db = mongo[database_name(namespace, "notifier")]
    broken = BrokenClientStore(db)
    await broken.ensure_indexes()
    await broken.remember(
        Delivery.of(
            request_submitted("r-broken", datetime.now(UTC) + timedelta(days=1), title="wedged"),
            CONTACT,
            at=datetime.now(UTC),
        )
    )
    fresh_clients: list[AsyncMongoClient[Document]] = []

    @asynccontextmanager
    async def store_afresh() -> AsyncIterator[DeliveryStore]:
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
        fresh_clients.append(client)
        try:
            yield MongoDeliveryStore(client[database_name(namespace, "notifier")])
        finally:
            await client.close()

    channel = Outbox()
    deps = NotifierDeps(
        store=broken,
        channels=(channel,),
        sealer=SEALER,
        reminders=MongoReminderStore(db),
        retry_wait=0.0,
        store_afresh=store_afresh,
    )

    await notify_rejection(rejected("r-broken"), deps)

    assert broken.attempts == RECORD_AFRESH_AFTER
    assert len(fresh_clients) == 1
    delivery = await MongoDeliveryStore(db).delivery("r-broken")
    assert delivery is not None
    assert delivery.recorded(MailKind.rejected)
    assert [notice.kind for notice in channel.sent] == [MailKind.rejected]


async def test_a_claim_taken_over_from_a_journaled_send_records_it_and_sends_nothing(
    mongo: AsyncMongoClient[Document], namespace: str, tmp_path: Path
) -> None:
    """The handler that sent the mail is still waiting for the store (or died) when a copy of
    its event takes the claim over after the lease: the journal's outcome is recorded."""
    db = mongo[database_name(namespace, "notifier")]
    store = MongoDeliveryStore(db)
    await store.ensure_indexes()
    submitted = request_submitted("r-journaled", datetime.now(UTC) + timedelta(days=1))
    await store.remember(Delivery.of(submitted, CONTACT, at=datetime.now(UTC)))
    journal = FileJournal(tmp_path / "sent-mails.jsonl").open()
    sent_at = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    await journal.write(Sent("r-journaled", MailOutcome.of(MailKind.rejected, None, at=sent_at)))
    channel = Outbox()
    deps = NotifierDeps(
        store=store,
        channels=(channel,),
        sealer=SEALER,
        reminders=MongoReminderStore(db),
        retry_wait=0.0,
        journal=journal,
    )

    await notify_rejection(rejected("r-journaled"), deps)

    assert channel.sent == []
    delivery = await store.delivery("r-journaled")
    assert delivery is not None
    assert delivery.outcomes[MailKind.rejected].at == sent_at
    assert journal.outcome("r-journaled", MailKind.rejected) is None  # recorded: forgotten
