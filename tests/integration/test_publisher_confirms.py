"""The services' publisher against the real broker: a nacked publish raises (the outbox keeps
the entry) and retires the channel it went through, and the next publish goes through a fresh
one and is confirmed.

The nack here comes from a queue that refuses every message (``x-max-length`` 0 with
``reject-publish``); in the cluster test it came from a channel whose cached view of the feed
stream still pointed at a lost node's writer (RabbitMQ 3.10).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from structlog.testing import capture_logs

from tests.support.events import request_submitted
from tests.support.tap import open_channel
from vcs_shared.broker import AmqpPublisher
from vcs_shared.envelope import encode
from vcs_shared.topology import Topology

pytestmark = pytest.mark.integration


async def test_a_nacked_publish_raises_and_the_next_goes_through_a_fresh_channel(
    amqp_url: str, broker: Any, topology: Topology
) -> None:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    first, second = (
        encode(request_submitted(str(uuid.uuid4()), starts), source="test") for _ in range(2)
    )
    full = await broker.declare_queue(
        f"{topology.namespace}.full",
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
        auto_delete=True,
    )
    await full.bind(topology.exchange, routing_key=first.routing_key)
    seen = await broker.declare_queue(f"{topology.namespace}.seen", exclusive=True)
    await seen.bind(topology.exchange, routing_key=first.routing_key)
    connection, _ = await open_channel(amqp_url)
    try:
        publisher = await AmqpPublisher.open(connection, topology.exchange)
        with capture_logs() as logs, pytest.raises(aio_pika.exceptions.DeliveryError):
            await publisher.publish(first)
        assert [e["event"] for e in logs] == ["publisher.channel_retired"]

        await full.unbind(topology.exchange, routing_key=first.routing_key)
        with capture_logs() as logs:
            await publisher.publish(second)
        assert logs == []
    finally:
        await connection.close()

    ids = []
    while (message := await seen.get(fail=False, no_ack=True)) is not None:
        ids.append(message.message_id)
    # A nack says some queue refused it, not that none took it: the outbox keeps the entry and
    # publishes it again, and consumers deduplicate by event id.
    assert ids == [first.id, second.id]
