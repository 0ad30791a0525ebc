"""The same event delivered twice (same CloudEvents id), even as two copies handled at the same
time, changes nothing twice: one reservation, one room.assigned, one email, one
credentials.delivered.

The copies are published before the consumers start, so both arrive in one prefetch batch
and are handled concurrently: the hardest case for an idempotent handler.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, timedelta
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from tests.support.events import sealed
from tests.support.faults import count_assignments
from tests.support.requests import tomorrow_at
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_shared.broker import Topology
from vcs_shared.credentials import CredentialsSealer, MeetingCredentials
from vcs_shared.envelope import OutgoingMessage, encode
from vcs_shared.events import Contact, RequestSubmitted, RoomAssigned, Urgency
from vcs_shared.store import Document, database_name
from vcs_tools.devstack import ServiceProcess, SmtpSink

pytestmark = pytest.mark.e2e


def submitted(request_id: str, hour: int) -> RequestSubmitted:
    starts_at = tomorrow_at(hour).astimezone(UTC)
    return RequestSubmitted(
        request_id=request_id,
        province_code="47",
        district_code="4701",
        title="ประชุมซ้ำ",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        participants=80,
        urgency=Urgency.normal,
        needs_support=False,
        sealed_contact=sealed(
            Contact(name="สมหญิง", email=f"{request_id}@example.go.th", phone="042-711360")
        ),
        submitted_at=starts_at - timedelta(days=1),
    )


async def publish(channel: Any, exchange: str, message: OutgoingMessage) -> None:
    target = channel.default_exchange if exchange == "" else await channel.get_exchange(exchange)
    await target.publish(
        aio_pika.Message(
            body=message.body.encode(),
            message_id=message.id,
            content_type="application/cloudevents+json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=message.routing_key,
    )


def handled(process: ServiceProcess, event_id: str, outcomes: tuple[str, ...]) -> int:
    """How many copies of ``event_id`` this process finished with one of ``outcomes``."""
    count = 0
    for line in process.log_path.read_text().splitlines():
        if f'"event_id": "{event_id}"' in line and any(f'"{o}"' in line for o in outcomes):
            count += 1
    return count


async def test_a_duplicated_event_changes_nothing_twice(
    start_services: StartServices,
    broker: Any,
    topology: Topology,
    tap: EventTap,
    mongo: AsyncMongoClient[Document],
    namespace: str,
    smtp_sink: SmtpSink,
    credentials_keys: str,
) -> None:
    allocated = str(uuid.uuid4())  # request.submitted twice: the allocator's duplicate
    mailed = str(uuid.uuid4())  # room.assigned twice: the notifier's duplicate
    to_allocate = encode(submitted(allocated, 9), source="test")
    for _ in range(2):
        await publish(broker, topology.exchange, to_allocate)
    allocator, notifier = await start_services("allocator", "notifier")
    contact = encode(submitted(mailed, 13), source="test")
    await publish(  # to the notifier's queue only, so that the allocator does not assign it
        broker,
        "",
        OutgoingMessage(id=contact.id, routing_key=topology.queue("notifier"), body=contact.body),
    )
    sealed = CredentialsSealer(credentials_keys).seal(
        MeetingCredentials(passcode="Dup1234", join_url="https://zoom.us/j/3475946456?pwd=Dup1234")
    )
    event = submitted(mailed, 13)
    to_mail = encode(
        RoomAssigned(
            request_id=mailed,
            province_code="47",
            district_code="4701",
            meeting_id="3475946456",
            capacity=300,
            join_url="https://zoom.us/j/3475946456",
            pool="province",
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            sealed_credentials=sealed,
        ),
        source="test",
    )
    deliveries = mongo[database_name(namespace, "notifier")]["deliveries"]

    async def contact_known() -> bool:
        return await deliveries.count_documents({"_id": mailed}) == 1

    await eventually(contact_known, what="the notifier knowing the contact")
    for _ in range(2):  # back to back: both copies are in the notifier's hands at once
        await publish(broker, topology.exchange, to_mail)

    async def all_copies_handled() -> bool:
        return (
            handled(allocator, to_allocate.id, ("allocation.assigned", "allocation.duplicate")) == 2
            and handled(notifier, to_mail.id, ("delivery.recorded", "delivery.duplicate")) == 2
        )

    await eventually(all_copies_handled, timeout=30, what="both copies of each event handled")
    await tap.wait_for("credentials.delivered", 2)

    room_assigned = Counter(
        (m.cloudevent["subject"], m.message_id) for m in tap.with_prefix("room.assigned")
    )
    assert room_assigned == {
        (mailed, to_mail.id): 2,
        **{k: 1 for k in room_assigned if k[0] == allocated},
    }
    assert len([k for k in room_assigned if k[0] == allocated]) == 1  # one, not one per copy
    delivered = Counter(m.cloudevent["subject"] for m in tap.with_prefix("credentials.delivered"))
    assert delivered == {allocated: 1, mailed: 1}
    mails = Counter(str(m["X-VCS-Request-Id"]) for m in smtp_sink.messages)
    assert mails == {allocated: 1, mailed: 1}
    decisions = mongo[database_name(namespace, "allocator")]["decisions"]
    assert await decisions.count_documents({"_id": allocated}) == 1
    assert await decisions.count_documents({"_id": mailed}) == 0
    assert await count_assignments(mongo, namespace, [allocated]) == {allocated: 1}
