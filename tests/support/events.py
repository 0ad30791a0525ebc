"""Events built the way the services would build them, for tests that hand them over directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika

from vcs_shared.credentials import CredentialsSealer, new_key
from vcs_shared.envelope import encode
from vcs_shared.events import EVENT_TYPES, Contact, RequestSubmitted, Urgency
from vcs_shared.topology import Topology

TEST_CREDENTIALS_KEYS = new_key()
"""The session's credentials key (the services get it as VCS_CREDENTIALS_KEYS), so events a
test hands over carry a contact the notifier can open."""
SEALER = CredentialsSealer(TEST_CREDENTIALS_KEYS)
CONTACT = Contact(name="x", email="x@example.go.th", phone="042-000000")


def sealed(contact: Contact = CONTACT) -> str:
    """The contact as ``request.submitted`` carries it: sealed with the session's key."""
    return SEALER.seal_contact(contact)


def request_submitted(
    request_id: str,
    starts_at: datetime,
    *,
    participants: int = 10,
    title: str = "test",
    needs_support: bool = False,
    contact: Contact | None = None,
) -> RequestSubmitted:
    """A one-hour request of Mueang Sakon Nakhon (4701), submitted a day before it starts."""
    return RequestSubmitted(
        request_id=request_id,
        province_code="47",
        district_code="4701",
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        participants=participants,
        urgency=Urgency.normal,
        needs_support=needs_support,
        sealed_contact=sealed(contact or CONTACT),
        submitted_at=starts_at - timedelta(days=1),
    )


def cloudevent_type(name: str) -> str:
    """The CloudEvents type published today for an event name (``request.submitted`` is .v2)."""
    [type_name] = [t for t, event in EVENT_TYPES.items() if event.name == name]
    return type_name


async def publish_submitted(
    channel: Any, topology: Topology, *, request_id: str | None = None
) -> str:
    """Publishes a ``request.submitted`` three days ahead, as the intake would; its request id
    (a new one unless given)."""
    request_id = request_id or str(uuid.uuid4())
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    message = encode(request_submitted(request_id, starts), source="test")
    exchange = await channel.get_exchange(topology.exchange)
    await exchange.publish(
        aio_pika.Message(message.body.encode(), message_id=message.id),
        routing_key=message.routing_key,
    )
    return request_id
