"""A store outage longer than a consumer's patience does not hand the message back: the
consumer waits it out holding the message, so outages never spend the queue's delivery limit
(the 30-minute chaos soak lost 71 requests to good messages dead-lettered after a few
outages). A failure that is not an outage still goes back to the queue at once, so a handler
that always fails reaches the limit and its DLQ; poison goes there at once.

The store here is a private nx-27017 server, frozen with SIGSTOP as in a real outage: the
handler's writes hang until its client's socket timeout.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from structlog.testing import capture_logs

from tests.support.events import publish_submitted
from tests.support.stand_in import stand_in_allocator
from tests.support.tap import open_channel
from tests.support.waiting import eventually
from vcs_shared.broker import EventConsumer
from vcs_shared.envelope import Envelope
from vcs_shared.events import RequestSubmitted
from vcs_shared.store import Document
from vcs_shared.topology import DELIVERY_LIMIT, Topology
from vcs_tools.devstack import EmbeddedStore

pytestmark = pytest.mark.integration

PATIENCE = 0.5
"""The consumer's patience with a RetryLater; far shorter than the outage made here."""
GOOD_ATTEMPTS = 8
"""Failed attempts of a good message before the store thaws: each attempt outlasts the
patience, so a consumer that handed the message back after its patience would have spent more
deliveries than the old delivery limit (5)."""
ROUTING_KEY = "request.submitted.47.4701"


@pytest.fixture(scope="module")
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("store-to-freeze")).start()
    try:
        yield store
    finally:
        store.stop()


@pytest_asyncio.fixture
async def writes(
    private_store: EmbeddedStore, namespace: str
) -> AsyncIterator[AsyncCollection[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        private_store.url, serverSelectionTimeoutMS=500, socketTimeoutMS=500, tz_aware=True
    )
    try:
        yield client[f"{namespace}_outages"]["handled"]
    finally:
        await client.close()


async def consume_with(
    amqp_url: str, topology: Topology, handle: Any
) -> tuple[aio_pika.abc.AbstractRobustConnection, EventConsumer]:
    connection, _ = await open_channel(amqp_url)
    consumer = EventConsumer(
        connection=connection,
        topology=topology,
        handlers=stand_in_allocator(handle),
        retry_timeout=PATIENCE,
    )
    await consumer.start()
    return connection, consumer


async def test_a_store_outage_is_waited_out_with_the_message_in_hand(
    amqp_url: str,
    broker: Any,
    topology: Topology,
    private_store: EmbeddedStore,
    writes: AsyncCollection[Document],
) -> None:
    attempts: list[str] = []

    async def handle(envelope: Envelope[RequestSubmitted], _: None) -> None:
        attempts.append(envelope.id)
        await writes.update_one({"_id": envelope.id}, {"$inc": {"writes": 1}}, upsert=True)

    connection, consumer = await consume_with(amqp_url, topology, handle)
    try:
        with capture_logs() as logs:
            private_store.pause()
            try:
                await publish_submitted(broker, topology)

                async def outlasted_patience() -> bool:  # each attempt waits out its timeout
                    return len(attempts) >= 4

                await eventually(outlasted_patience, what="several failed attempts")
            finally:
                private_store.resume()

            async def written() -> Document | None:
                return await writes.find_one({"_id": attempts[0]})

            document = await eventually(written, what="the write after the thaw")
        assert document["writes"] == 1
        assert set(attempts) == {attempts[0]}
        handed_back = [e for e in logs if e["event"] == "consumer.handler_failed"]
        assert handed_back == []  # never nacked: the delivery limit was not spent
    finally:
        await consumer.stop(grace=5)
        await connection.close()


async def test_a_failure_that_is_no_outage_goes_back_to_the_queue_at_once(
    amqp_url: str, broker: Any, topology: Topology
) -> None:
    deliveries: list[bool] = []

    async def handle(envelope: Envelope[RequestSubmitted], _: None) -> None:
        deliveries.append(True)
        if len(deliveries) == 1:
            raise ValueError("a bug that a second delivery does not meet")

    connection, consumer = await consume_with(amqp_url, topology, handle)
    try:
        with capture_logs() as logs:
            await publish_submitted(broker, topology)

            async def handled_on_redelivery() -> bool:
                return len(deliveries) == 2

            await eventually(handled_on_redelivery, what="the redelivered copy handled")
        handed_back = [e for e in logs if e["event"] == "consumer.handler_failed"]
        assert len(handed_back) == 1
        assert handed_back[0]["redelivered"] is False
    finally:
        await consumer.stop(grace=5)
        await connection.close()


async def dead_letter_ids(broker: Any, topology: Topology) -> list[str | None]:
    queue = await broker.get_queue(topology.dead_letter_queue("allocator"))
    ids: list[str | None] = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        ids.append(message.message_id)
    return ids


async def test_an_outage_dead_letters_no_good_message_but_poison_and_a_failing_one_are(
    amqp_url: str,
    broker: Any,
    topology: Topology,
    private_store: EmbeddedStore,
    writes: AsyncCollection[Document],
) -> None:
    """While the store stays frozen far beyond the consumer's patience, the good message is held
    and written once after the thaw; poison is dead-lettered at once and a message whose
    handler always fails reaches the delivery limit, all on the same queue meanwhile."""
    good_attempts: list[str] = []
    failing_deliveries: list[str] = []
    failing_request = str(uuid.uuid4())

    async def handle(envelope: Envelope[RequestSubmitted], _: None) -> None:
        if envelope.event.request_id == failing_request:
            failing_deliveries.append(envelope.id)
            raise ValueError("a handler that fails whatever the store does")
        good_attempts.append(envelope.id)
        await writes.update_one({"_id": envelope.id}, {"$inc": {"writes": 1}}, upsert=True)

    connection, consumer = await consume_with(amqp_url, topology, handle)
    try:
        private_store.pause()
        try:
            await publish_submitted(broker, topology)
            await publish_submitted(broker, topology, request_id=failing_request)
            poison_id = str(uuid.uuid4())
            exchange = await broker.get_exchange(topology.exchange)
            await exchange.publish(
                aio_pika.Message(b"{ not a CloudEvent", message_id=poison_id),
                routing_key=ROUTING_KEY,
            )
            dlq = await broker.get_queue(topology.dead_letter_queue("allocator"))

            async def both_dead_and_the_good_one_retried_or_dead() -> bool:
                depth = (await dlq.declare()).message_count or 0
                return depth > 2 or (depth == 2 and len(good_attempts) >= GOOD_ATTEMPTS)

            await eventually(
                both_dead_and_the_good_one_retried_or_dead,
                timeout=90,
                what="poison and the failing message dead-lettered, the good one retried",
            )
        finally:
            private_store.resume()
        dead = await dead_letter_ids(broker, topology)
        assert sorted(map(str, dead)) == sorted([poison_id, failing_deliveries[0]])

        async def written() -> Document | None:
            return await writes.find_one({"_id": good_attempts[0]})

        document = await eventually(written, what="the good message written after the thaw")
        assert document["writes"] == 1
        assert len(failing_deliveries) == DELIVERY_LIMIT + 1  # the first delivery and its returns
    finally:
        await consumer.stop(grace=5)
        await connection.close()
