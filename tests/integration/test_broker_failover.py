"""A service's broker connection over several addresses (``VCS_AMQP_URL`` as a list): it starts
on the first node that answers and moves to the next one when its node goes, with its channels
and consumers restored there.

The node that goes away here is a TCP relay in front of the real RabbitMQ (closing it cuts every
connection through it, as a node's death does); the real three-node cluster is
tests/cluster/test_rabbitmq_cluster.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from yarl import URL

from tests.support.events import publish_submitted
from tests.support.stand_in import stand_in_allocator
from tests.support.waiting import eventually
from vcs_shared.broker import EventConsumer, broker_connected, connect
from vcs_shared.broker_nodes import NodeRotatingConnection
from vcs_shared.envelope import Envelope
from vcs_shared.events import RequestSubmitted
from vcs_shared.runtime import start_once_connected
from vcs_shared.topology import Topology
from vcs_tools.devstack import free_port

pytestmark = pytest.mark.integration


class Relay:
    """Forwards TCP connections from its own port to the broker; ``cut`` closes them all and
    stops listening, like a node that died."""

    def __init__(self, target: URL) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, base: URL) -> str:
        return str(base.with_port(self.port))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._target.host is not None
        up_reader, up_writer = await asyncio.open_connection(
            self._target.host, self._target.port or 5672
        )
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()


@pytest_asyncio.fixture
async def relay(amqp_url: str) -> AsyncIterator[Relay]:
    relay = await Relay(URL(amqp_url)).start()
    try:
        yield relay
    finally:
        await relay.cut()


async def test_the_first_node_that_answers_is_used(amqp_url: str) -> None:
    dead = str(URL(amqp_url).with_port(free_port()))  # nothing listens there

    connection = await connect(f"{dead},{amqp_url}", name="test-failover")
    try:
        assert isinstance(connection, NodeRotatingConnection)
        assert connection.node == f"127.0.0.1:{URL(amqp_url).port}"
        assert broker_connected(connection)
    finally:
        await connection.close()


async def test_no_node_answering_fails_the_start() -> None:
    dead = [f"amqp://guest:guest@127.0.0.1:{free_port()}/" for _ in range(2)]

    with pytest.raises(ConnectionError):
        await connect(",".join(dead), name="test-failover")


async def test_a_lost_node_is_left_for_the_next_and_the_consumer_is_restored_there(
    amqp_url: str, relay: Relay, namespace: str
) -> None:
    connection = await connect(f"{relay.url(URL(amqp_url))},{amqp_url}", name="test-failover")
    try:
        assert isinstance(connection, NodeRotatingConnection)
        assert connection.node == f"127.0.0.1:{relay.port}"
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{namespace}.failover", auto_delete=True)
        received: list[bytes] = []

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append(message.body)
            await message.ack()

        await queue.consume(on_message)
        reconnected = asyncio.Event()
        connection.reconnect_callbacks.add(lambda _: reconnected.set())

        await relay.cut()
        await asyncio.wait_for(reconnected.wait(), timeout=30)

        assert connection.node == f"127.0.0.1:{URL(amqp_url).port}"
        assert broker_connected(connection)
        await channel.default_exchange.publish(
            aio_pika.Message(b"after the failover"), routing_key=queue.name
        )

        async def delivered() -> bool:
            return bool(received)

        await eventually(delivered, what="a message through the restored consumer")
        assert received == [b"after the failover"]
    finally:
        await connection.close()


async def test_a_handler_under_way_when_its_node_goes_finishes_and_is_not_done_twice(
    amqp_url: str, relay: Relay, broker: Any, topology: Topology
) -> None:
    """A handler between its side effect and its record must not be cut off by the channel
    closing under it: the broker redelivers the message anyway, and a handler cancelled
    half-way (a mail sent, not yet recorded) would make the redelivered copy do it again."""
    connection = await connect(f"{relay.url(URL(amqp_url))},{amqp_url}", name="test-handler")
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    calls: Counter[str] = Counter()
    claimed: set[str] = set()
    done: list[str] = []
    cut_off: list[str] = []

    async def handle(envelope: Envelope[RequestSubmitted], _: None) -> None:
        request_id = envelope.event.request_id
        calls[request_id] += 1
        if request_id in claimed:  # a copy waits for the first handling, as a claim makes it
            await finished.wait()
            return
        claimed.add(request_id)
        started.set()
        try:
            await release.wait()  # the side effect is under way when the node goes
        except asyncio.CancelledError:
            cut_off.append(request_id)
            raise
        finally:
            finished.set()
        done.append(request_id)

    consumer = EventConsumer(
        connection=connection, topology=topology, handlers=stand_in_allocator(handle)
    )
    await consumer.start()
    try:
        request_id = await publish_submitted(broker, topology)
        await asyncio.wait_for(started.wait(), timeout=20)
        reconnected = asyncio.Event()
        connection.reconnect_callbacks.add(lambda _: reconnected.set())

        await relay.cut()
        await asyncio.wait_for(reconnected.wait(), timeout=30)
        release.set()

        async def redelivered_and_settled() -> bool:
            queue = await broker.declare_queue(topology.queue_for("allocator", "47"), passive=True)
            return calls[request_id] == 2 and queue.declaration_result.message_count == 0

        await eventually(redelivered_and_settled, what="the redelivered copy handled")
        assert cut_off == []
        assert done == [request_id]
        assert calls[request_id] == 2  # the original, then the redelivered copy: no third
    finally:
        await consumer.stop(grace=5)
        await connection.close()


async def test_a_start_up_whose_node_goes_before_its_first_channel_waits_for_the_next(
    amqp_url: str, relay: Relay, broker: Any, topology: Topology
) -> None:
    """A service restarted during a broker outage may connect and then lose its node before it
    opens its first channel; the start-up waits for the robust connection to come back
    instead of failing (``RuntimeError: Connection was not opened``) and exiting."""
    connection = await connect(f"{relay.url(URL(amqp_url))},{amqp_url}", name="test-startup")
    handled: list[str] = []

    async def handle(envelope: Envelope[RequestSubmitted], _: None) -> None:
        handled.append(envelope.event.request_id)

    consumer = EventConsumer(
        connection=connection, topology=topology, handlers=stand_in_allocator(handle)
    )
    try:
        await relay.cut()

        async def disconnected() -> bool:
            return not connection.connected.is_set()

        await eventually(disconnected, what="the connection noticing its node went")
        await asyncio.wait_for(start_once_connected(consumer, connection), timeout=60)

        request_id = await publish_submitted(broker, topology)

        async def consumed() -> bool:
            return request_id in handled

        await eventually(consumed, what="the event handled by the consumer started late")
        assert handled == [request_id]
    finally:
        await consumer.stop(grace=5)
        await connection.close()
