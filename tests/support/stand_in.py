"""A stand-in allocator for tests of the consumer itself (the allocator's handler table with the
test's own handler for ``request.submitted``, ``request.cancelled`` ignored), and the
allocator's unsplit queue of earlier releases, for tests of the upgrade."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractChannel, AbstractQueue

from vcs_shared.dispatch import Handlers, HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import RequestCancelled, RequestSubmitted
from vcs_shared.topology import Topology

OnSubmitted = Callable[[Envelope[RequestSubmitted], None], Awaitable[None]]


def stand_in_allocator(on_submitted: OnSubmitted) -> Handlers:
    """Handlers the consumer accepts for the allocator's queues (it refuses a table that does
    not handle exactly the events bound to them)."""

    async def ignore(envelope: Envelope[RequestCancelled], _: None) -> None:
        return None

    table = HandlerTable[None]("allocator").on(RequestSubmitted, on_submitted)
    return table.on(RequestCancelled, ignore).bind(None)


async def declare_unsplit_queue(channel: AbstractChannel, topology: Topology) -> AbstractQueue:
    """``<ns>.allocator`` as earlier releases declared it, unbound: a shard's arguments without
    the single active consumer (its dead letters went to the same DLQ)."""
    arguments = {
        key: value
        for key, value in topology.queue_arguments("allocator").items()
        if key != "x-single-active-consumer"
    }
    return await channel.declare_queue(
        topology.queue("allocator"), durable=True, arguments=arguments
    )
