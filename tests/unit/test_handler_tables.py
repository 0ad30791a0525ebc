"""Each service's handler table and its queue agree: the bindings the topology declares (and
deploy/rabbitmq/definitions.json holds) are exactly the events the table handles, so no event
is bound without a handler (acked and dropped) or handled without a binding (never arriving)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from vcs_allocator.handlers import HANDLERS as ALLOCATOR
from vcs_desk.request_projection import HANDLERS as DESK
from vcs_intake.projection import HANDLERS as INTAKE
from vcs_notifier.handlers import HANDLERS as NOTIFIER
from vcs_shared.dispatch import HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import CredentialsFailed, RoomAssigned, RoomReleased
from vcs_shared.topology import CONSUMERS, SubscriptionMismatch, Topology, require_subscribed
from vcs_tools.rabbitmq import definitions

pytestmark = pytest.mark.unit

TABLES = {table.service: table for table in (INTAKE, ALLOCATOR, NOTIFIER, DESK)}


@pytest.mark.parametrize("service", sorted(CONSUMERS))
def test_the_declared_bindings_of_each_queue_are_its_handler_tables_events(service: str) -> None:
    """Whatever the province (a split queue binds each province's events to its shard)."""
    table = TABLES[service]
    queues = Topology("vcs").consumed_queues(service)
    declared = {
        re.sub(r"\.(#|[0-9]{2}\.\*)$", "", binding["routing_key"])
        for binding in definitions("vcs", "/")["bindings"]
        if binding["destination"] in queues and binding["source"] == "vcs.events"
    }

    assert declared == {event_type.name for event_type in table.events}
    require_subscribed(service, table.events)  # what the consumer checks before it starts


def test_every_consuming_service_has_a_table() -> None:
    assert set(TABLES) == set(CONSUMERS)


async def on_failed(envelope: Envelope[CredentialsFailed], seen: list[Any]) -> None:
    seen.append(envelope.event.error)


def failed() -> CredentialsFailed:
    return CredentialsFailed(
        request_id="r-1", province_code="47", district_code="4701", channel="email", error="x"
    )


def test_a_table_handling_other_events_than_its_queue_receives_is_refused() -> None:
    table = HandlerTable[list[Any]]("notifier").on(CredentialsFailed, on_failed)

    with pytest.raises(SubscriptionMismatch) as refused:
        require_subscribed(table.service, table.events)

    assert "credentials.failed" in str(refused.value)
    assert "request.cancelled" in str(refused.value)


async def test_a_bound_table_hands_each_event_to_its_handler_with_the_dependencies() -> None:
    seen: list[Any] = []
    handlers = HandlerTable[list[Any]]("intake").on(CredentialsFailed, on_failed).bind(seen)
    event = failed()
    handler = handlers.handler_for(event)
    assert handler is not None

    await handler(Envelope(str(uuid.uuid4()), event, datetime.now(UTC), "/dopa-vcs/test", None))

    assert seen == ["x"]
    released = RoomReleased(
        request_id="r-1",
        province_code="47",
        district_code="4701",
        meeting_id="111111111",
        starts_at=datetime.now(UTC),
        ends_at=datetime.now(UTC),
    )
    assert handlers.handler_for(released) is None


def test_an_event_gets_one_handler_only() -> None:
    table = HandlerTable[list[Any]]("intake").on(CredentialsFailed, on_failed)

    with pytest.raises(ValueError, match=r"credentials\.failed"):
        table.on(CredentialsFailed, on_failed)
    assert RoomAssigned not in table.events
