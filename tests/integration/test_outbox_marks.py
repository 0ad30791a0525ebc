"""The outbox marks what it published as sent in batches: every mark is written, each event
reaches the broker once, and a sweep marks all it published in one write.

Real broker (a private queue bound to the test's exchange) and real store; the store's
commands are counted with pymongo's command monitoring, as the benchmark counts them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from tests.support.events import request_submitted
from tests.support.store_commands import WritesTo
from tests.support.tap import open_channel
from vcs_shared.broker import AmqpPublisher
from vcs_shared.outbox import Outbox, OutboxRelay, announce
from vcs_shared.store import Document, database_name
from vcs_shared.topology import Topology

pytestmark = pytest.mark.integration

DOCUMENTS = 40


@pytest_asyncio.fixture
async def counted(
    mongodb_url: str, namespace: str
) -> AsyncIterator[tuple[AsyncMongoClient[Document], WritesTo]]:
    updates = WritesTo("update", "things")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[updates]
    )
    try:
        yield client, updates
    finally:
        await client.drop_database(database_name(namespace, "intake"))
        await client.close()


async def test_concurrent_publishes_mark_every_entry_sent_in_shared_writes(
    amqp_url: str,
    broker: Any,
    topology: Topology,
    namespace: str,
    counted: tuple[AsyncMongoClient[Document], WritesTo],
) -> None:
    client, updates = counted
    seen = await broker.declare_queue(f"{topology.namespace}.marks", exclusive=True)
    await seen.bind(topology.exchange, routing_key="#")
    connection, _ = await open_channel(amqp_url)
    try:
        publisher = await AmqpPublisher.open(connection, topology.exchange)
        collection = client[database_name(namespace, "intake")]["things"]
        outbox = Outbox(collection, source="test", publisher=publisher)
        await outbox.ensure_index()
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        events = {
            str(uuid.uuid4()): request_submitted(str(uuid.uuid4()), starts)
            for _ in range(DOCUMENTS)
        }

        await asyncio.gather(
            *(
                outbox.insert({"_id": doc_id}, announce(event, correlation_id=doc_id))
                for doc_id, event in events.items()
            )
        )

        documents = [d async for d in collection.find({})]
        assert len(documents) == DOCUMENTS
        assert [d["_id"] for d in documents if d["outbox_pending"]] == []
        assert sum(1 for d in documents for e in d["outbox"] if e["sent"]) == DOCUMENTS
        assert updates.statements == DOCUMENTS  # one mark per document, none lost or doubled
        assert updates.commands <= DOCUMENTS

        delivered = []
        while (message := await seen.get(fail=False, no_ack=True)) is not None:
            delivered.append(message.message_id)
        assert len(delivered) == DOCUMENTS
        assert len(set(delivered)) == DOCUMENTS

        # Nothing is left for the sweep: it finds no pending document and publishes nothing.
        assert await outbox.relay.sweep(include_fresh=True)
        assert await seen.get(fail=False, no_ack=True) is None
    finally:
        await connection.close()


async def test_a_single_publish_writes_its_mark_before_it_returns(
    amqp_url: str,
    broker: Any,
    topology: Topology,
    namespace: str,
    counted: tuple[AsyncMongoClient[Document], WritesTo],
) -> None:
    client, updates = counted
    connection, _ = await open_channel(amqp_url)
    try:
        publisher = await AmqpPublisher.open(connection, topology.exchange)
        collection = client[database_name(namespace, "intake")]["things"]
        outbox = Outbox(collection, source="test", publisher=publisher)
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        event = request_submitted(str(uuid.uuid4()), starts)

        await outbox.insert({"_id": "one"}, announce(event, correlation_id="one"))

        document = await collection.find_one({"_id": "one"})
        assert document is not None
        assert not document["outbox_pending"]
        assert [bool(e["sent"]) for e in document["outbox"]] == [True]
        assert (updates.commands, updates.statements) == (1, 1)
    finally:
        await connection.close()


async def test_a_sweep_marks_everything_it_published_in_one_write(
    amqp_url: str,
    broker: Any,
    topology: Topology,
    namespace: str,
    counted: tuple[AsyncMongoClient[Document], WritesTo],
) -> None:
    client, updates = counted
    seen = await broker.declare_queue(f"{topology.namespace}.swept", exclusive=True)
    await seen.bind(topology.exchange, routing_key="#")
    collection = client[database_name(namespace, "intake")]["things"]
    offline = Outbox(collection, source="test")  # a process that leaves its entries to a relay
    await offline.ensure_index()
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    for index in range(DOCUMENTS):
        event = request_submitted(str(uuid.uuid4()), starts)
        await offline.insert({"_id": f"doc-{index}"}, announce(event, correlation_id=None))
    assert await collection.count_documents({"outbox_pending": True}) == DOCUMENTS
    connection, _ = await open_channel(amqp_url)
    try:
        relay = OutboxRelay(collection, await AmqpPublisher.open(connection, topology.exchange))

        assert await relay.sweep(include_fresh=True)

        assert await collection.count_documents({"outbox_pending": True}) == 0
        assert (updates.commands, updates.statements) == (1, DOCUMENTS)
        delivered = []
        while (message := await seen.get(fail=False, no_ack=True)) is not None:
            delivered.append(message.message_id)
        assert len(set(delivered)) == len(delivered) == DOCUMENTS
    finally:
        await connection.close()
