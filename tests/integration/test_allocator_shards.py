"""The allocator's queue split by province: one allocator process at a time handles a province,
another takes over when it goes, and the unsplit queue of an earlier release is drained.

Several allocator processes used to take messages from one queue, so two of them could pick the
same free room for requests of one province at once and one lost the claim at the unique index
(hundreds of refused inserts in a 928-office burst with three allocators). Each shard queue now
has a single active consumer. The consumers here are real ``EventConsumer``s on their own
connections to the real broker, with a stand-in handler table for the allocator's events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sized
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest

from tests.support.events import request_submitted
from tests.support.stand_in import declare_unsplit_queue, stand_in_allocator
from tests.support.tap import open_channel
from tests.support.waiting import eventually
from vcs_shared.broker import EventConsumer, retire_queues
from vcs_shared.envelope import Envelope, encode
from vcs_shared.events import RequestSubmitted
from vcs_shared.topology import REPLAY_HEADER, SHARDS, Topology, binding_keys, shard_of

pytestmark = pytest.mark.integration

PROVINCES = [f"{code}" for code in range(10, 10 + 2 * SHARDS["allocator"])]
"""Two provinces of every shard."""

Handled = list[tuple[str, str, str]]
"""(consumer, province, request id) of every handling, in order."""


async def start_consumer(
    amqp_url: str, topology: Topology, name: str, handled: Handled
) -> tuple[aio_pika.abc.AbstractRobustConnection, EventConsumer]:
    async def handle(envelope: Envelope[RequestSubmitted], _: None) -> None:
        handled.append((name, envelope.event.province_code, envelope.event.request_id))

    connection, _ = await open_channel(amqp_url)
    consumer = EventConsumer(
        connection=connection, topology=topology, handlers=stand_in_allocator(handle)
    )
    await consumer.start()
    return connection, consumer


def submitted(province: str) -> tuple[str, str, aio_pika.Message]:
    """A ``request.submitted`` of the province's first district: its request id, its routing
    key and the message."""
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    request_id = str(uuid.uuid4())
    event = request_submitted(request_id, starts).model_copy(
        update={"province_code": province, "district_code": f"{province}01"}
    )
    message = encode(event, source="test")
    body = aio_pika.Message(message.body.encode(), message_id=message.id)
    return request_id, message.routing_key, body


async def publish_wave(broker: Any, topology: Topology, per_province: int) -> None:
    exchange = await broker.get_exchange(topology.exchange)
    for _ in range(per_province):
        for province in PROVINCES:
            _, routing_key, message = submitted(province)
            await exchange.publish(message, routing_key=routing_key)


def all_handled(handled: Sized, count: int) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return len(handled) >= count

    return probe


async def test_one_allocator_at_a_time_handles_a_shard_and_another_takes_over_when_it_stops(
    amqp_url: str, broker: Any, topology: Topology
) -> None:
    handled: Handled = []
    first = await start_consumer(amqp_url, topology, "first", handled)
    second = await start_consumer(amqp_url, topology, "second", handled)
    try:
        await publish_wave(broker, topology, per_province=3)
        wave = 3 * len(PROVINCES)
        await eventually(all_handled(handled, wave), what="the first wave handled")

        by_shard: dict[int, set[str]] = {}
        for consumer, province, _ in handled:
            by_shard.setdefault(shard_of("allocator", province), set()).add(consumer)
        assert sorted(by_shard) == list(range(SHARDS["allocator"]))
        assert all(len(consumers) == 1 for consumers in by_shard.values()), by_shard

        await first[1].stop(grace=5)
        await first[0].close()
        await publish_wave(broker, topology, per_province=1)
        await eventually(all_handled(handled, wave + len(PROVINCES)), what="the second wave")

        assert {name for name, _, _ in handled[wave:]} == {"second"}
        twice = [rid for rid, n in Counter(rid for _, _, rid in handled).items() if n > 1]
        assert twice == []
        assert len(handled) == wave + len(PROVINCES)
    finally:
        for connection, running in (first, second):
            if not connection.is_closed:
                await running.stop(grace=5)
                await connection.close()


async def test_the_unsplit_queue_of_an_earlier_release_is_unbound_and_drained(
    amqp_url: str, broker: Any, topology: Topology
) -> None:
    """As after an upgrade: the old ``<ns>.allocator`` still bound, one request waiting in it."""
    old = await declare_unsplit_queue(broker, topology)
    try:
        for key in binding_keys("allocator"):
            await old.bind(topology.exchange, routing_key=key)
        await old.bind(
            topology.replay_exchange, arguments={"x-match": "all", REPLAY_HEADER: "allocator"}
        )
        waiting_id, _, waiting = submitted("47")
        await broker.default_exchange.publish(waiting, routing_key=old.name)
        connection, _ = await open_channel(amqp_url)
        try:
            await retire_queues(connection, topology)
            await retire_queues(connection, topology)  # again, as every start does: no harm
        finally:
            await connection.close()

        fresh_id, routing_key, fresh = submitted("47")
        await (await broker.get_exchange(topology.exchange)).publish(fresh, routing_key=routing_key)
        shard = await broker.get_queue(topology.queue_for("allocator", "47"))

        async def routed() -> bool:
            return bool((await shard.declare()).message_count == 1)

        await eventually(routed, what="the new request in its shard")
        assert (await old.declare()).message_count == 1  # only the one from before

        handled: Handled = []
        connection, consumer = await start_consumer(amqp_url, topology, "allocator", handled)
        try:
            await eventually(all_handled(handled, 2), what="both requests handled")

            async def drained() -> bool:
                return bool((await old.declare()).message_count == 0)

            await eventually(drained, what="the old queue drained")
            assert sorted(rid for _, _, rid in handled) == sorted([waiting_id, fresh_id])
        finally:
            await consumer.stop(grace=5)
            await connection.close()
    finally:
        await broker.queue_delete(topology.queue("allocator"))


async def test_a_process_handles_at_most_its_prefetch_at_once_across_the_shards(
    amqp_url: str, broker: Any, topology: Topology
) -> None:
    """Each shard may deliver ``prefetch`` messages ahead (quorum queues have no channel-wide
    limit), but the handlers running at once stay within ``prefetch``."""
    running: set[str] = set()
    most = 0
    go_on = asyncio.Event()
    done: list[str] = []

    async def handle(envelope: Envelope[RequestSubmitted], _: None) -> None:
        nonlocal most
        running.add(envelope.event.request_id)
        most = max(most, len(running))
        await go_on.wait()
        running.discard(envelope.event.request_id)
        done.append(envelope.event.request_id)

    connection, _ = await open_channel(amqp_url)
    consumer = EventConsumer(
        connection=connection, topology=topology, handlers=stand_in_allocator(handle), prefetch=3
    )
    await consumer.start()
    try:
        await publish_wave(broker, topology, per_province=1)  # 16 requests over all 8 shards

        async def three_running() -> bool:
            return len(running) == 3

        await eventually(three_running, what="three handlers running")
        shards = [await broker.get_queue(name) for name in topology.consumed_queues("allocator")]

        async def the_rest_delivered() -> bool:  # every shard handed its two over
            counts = [(await shard.declare()).message_count for shard in shards]
            return counts == [0] * len(shards)

        await eventually(the_rest_delivered, what="every shard's messages delivered")
        assert len(running) == 3
        go_on.set()
        await eventually(all_handled(done, len(PROVINCES)), what="all handled")
        assert most == 3
        assert sorted(Counter(done).values()) == [1] * len(PROVINCES)
    finally:
        await consumer.stop(grace=5)
        await connection.close()
