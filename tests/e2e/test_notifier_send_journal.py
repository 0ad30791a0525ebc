"""The chaos soak's second copies, for real (issue 17): the relay accepted the mail, the store
could not take the notifier's record of it, the notifier was SIGKILLed; the notifier started
after it must record the mail from its local journal, not send it again.

The notifier gets a store of its own here (an ``nx-27017`` process), stopped by the SMTP
server itself as it accepts the mail: so the outage always falls between the relay's ``250``
and the record. (Frozen with SIGSTOP instead, the store took the record all the same once it
was thawed: the write was already in its socket's buffer. In the soak it was not.) Without
the journal the record would wait for the dead process's send claim to run out (90 s), and
the mail would then go a second time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo import AsyncMongoClient

from tests.support.events import SEALER, request_submitted
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_notifier.domain import MailKind
from vcs_notifier.store import MongoDeliveryStore
from vcs_shared.credentials import MeetingCredentials
from vcs_shared.envelope import encode
from vcs_shared.events import Event, RoomAssigned
from vcs_shared.store import Document, database_name
from vcs_shared.topology import Topology
from vcs_tools.devstack import EmbeddedStore, free_port
from vcs_tools.mailsink import KeepMail

pytestmark = pytest.mark.e2e

REQUEST = "r-journal"


class StopsTheStore(KeepMail):
    """A relay that stops the notifier's store as it accepts the first mail, then answers
    ``250``."""

    def __init__(self, store: EmbeddedStore) -> None:
        super().__init__(None)
        self.store = store

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == 1:
            await asyncio.to_thread(self.store.stop)
        return reply


@pytest.fixture
def own_store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "notifier-store").start()
    try:
        yield store
    finally:
        store.stop()


async def publish(broker: Any, topology: Topology, event: Event) -> None:
    message = encode(event, source="test", correlation_id=event.request_id)
    exchange = await broker.get_exchange(topology.exchange)
    await exchange.publish(
        aio_pika.Message(message.body.encode(), message_id=message.id),
        routing_key=message.routing_key,
    )


def logged(path: Path, event: str) -> bool:
    return any(
        json.loads(line).get("event") == event
        for line in path.read_text().splitlines()
        if line.startswith("{")
    )


async def test_a_notifier_killed_between_the_relays_250_and_its_record_sends_no_second_copy(
    start_services: StartServices,
    broker: Any,
    topology: Topology,
    tap: EventTap,
    namespace: str,
    own_store: EmbeddedStore,
    service_env: dict[str, str],
) -> None:
    relay = StopsTheStore(own_store)
    smtp = Controller(relay, hostname="127.0.0.1", port=free_port())
    smtp.start()
    client: AsyncMongoClient[Document] = AsyncMongoClient(own_store.url, tz_aware=True)
    try:
        env = {"VCS_MONGODB_URL": own_store.url, "VCS_SMTP_PORT": str(smtp.port)}
        journal = Path(service_env["VCS_SEND_JOURNAL"])
        [first] = await start_services("notifier", extra_env=env)
        store = MongoDeliveryStore(client[database_name(namespace, "notifier")])
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        await publish(broker, topology, request_submitted(REQUEST, starts))

        async def contact_kept() -> bool:
            return await store.delivery(REQUEST) is not None

        await eventually(contact_kept, what="the contact kept")
        credentials = MeetingCredentials(passcode="951357", join_url="https://zoom.us/j/1?pwd=x")
        assigned = RoomAssigned(
            request_id=REQUEST,
            province_code="47",
            district_code="4701",
            meeting_id="123456789",
            capacity=300,
            join_url="https://zoom.us/j/123456789",
            pool="province",
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
            sealed_credentials=SEALER.seal(credentials),
        )
        await publish(broker, topology, assigned)

        async def journaled() -> bool:
            return REQUEST in await asyncio.to_thread(journal.read_text)

        # The mail went out, the store is down, the outcome is in the journal: the record waits.
        await eventually(journaled, what="the sent mail in the journal")
        assert len(relay.messages) == 1
        first.kill()
        own_store.start()

        [second] = await start_services("notifier", extra_env=env)

        async def recorded() -> bool:
            delivery = await store.delivery(REQUEST)
            return delivery is not None and delivery.recorded(MailKind.assigned)

        # Well within the dead process's 90-s claim: recorded from the journal at start.
        await eventually(recorded, timeout=30, what="the mail recorded as sent")
        assert logged(second.log_path, "journal.replayed")

        async def redelivered_and_dropped() -> bool:
            return logged(second.log_path, "delivery.duplicate")

        # room.assigned, redelivered after the kill, finds the mail recorded: nothing sent.
        await eventually(redelivered_and_dropped, what="the redelivered room.assigned handled")
        [delivered] = await tap.wait_for("credentials.delivered")
        assert delivered.cloudevent["data"]["request_id"] == REQUEST
        assert tap.with_prefix("credentials.failed") == []
        assert [m["Message-ID"] for m in relay.messages] == [f"<assigned.{REQUEST}@vcs.dopa.go.th>"]
        # Compacted: the store holds the outcome now.
        assert await asyncio.to_thread(journal.read_text) == ""
    finally:
        await client.close()
        smtp.stop()
