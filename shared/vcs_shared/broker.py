"""RabbitMQ through aio-pika: declaring the topology, a confirming publisher and a safe consumer.

What the topology is (exchanges, queues, their arguments and bindings) is defined in
:mod:`vcs_shared.topology`; this module declares it, publishes and consumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aio_pika
import stamina
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from pymongo.errors import ConnectionFailure, NetworkTimeout

from vcs_shared.broker_nodes import broker_urls, connect_to_cluster
from vcs_shared.dispatch import BoundHandler, Handlers
from vcs_shared.envelope import CONTENT_TYPE, Envelope, OutgoingMessage, PoisonMessage, decode
from vcs_shared.events import Event
from vcs_shared.metrics import MESSAGES
from vcs_shared.topology import CONSUMERS, require_subscribed
from vcs_shared.topology import Topology as Topology  # where most broker users look for it
from vcs_shared.tracing import consuming_span

log = structlog.get_logger(__name__)

DEAD_REASON_HEADER = "x-vcs-dead-reason"
ORIGINAL_ROUTING_KEY_HEADER = "x-vcs-original-routing-key"


class RetryLater(Exception):
    """Raised by a handler when a message cannot be handled yet but will be (ordering, outages)."""


OUTAGES: tuple[type[Exception], ...] = (
    ConnectionFailure,
    NetworkTimeout,
    aio_pika.exceptions.AMQPConnectionError,
    aio_pika.exceptions.ChannelInvalidStateError,
    ConnectionError,
    TimeoutError,
)
"""The store or the broker out of reach: nothing about the message itself."""


def retry_in_place(patience: float) -> Callable[[Exception], bool]:
    """When a handler's failure is retried while the consumer holds the message (for stamina).

    An outage is waited out in place however long it lasts: handing the message back would
    spend the queue's delivery limit on the store's or the broker's trouble, and after a few
    outages dead-letter a good message (the 30-minute chaos soak lost 71 requests so). A
    :class:`RetryLater` (an event ahead of its predecessor, a claim held by another copy) is
    retried for ``patience`` seconds, then the message goes back to the queue. Anything else
    is not retried: it goes back at once, and the delivery limit ends a handler that always
    fails.
    """
    started = time.monotonic()

    def retry(error: Exception) -> bool:
        if isinstance(error, OUTAGES):
            return True
        return isinstance(error, RetryLater) and time.monotonic() - started < patience

    return retry


RECONNECT_INTERVAL = 1.0


async def connect(url: str, *, name: str) -> AbstractRobustConnection:
    """A robust connection: aio-pika reconnects and restores channels, exchanges and consumers.

    ``url`` is one broker or the comma-separated nodes of a cluster
    (:mod:`vcs_shared.broker_nodes`): the connection starts on the first node that answers and
    moves to the next one whenever it loses its node. Losing and regaining the broker is
    logged with the node, so an outage or a failover is visible in the service's own log and
    not only in aio-pika's.
    """
    connection = await connect_to_cluster(
        broker_urls(url),
        client_properties={"connection_name": name},
        reconnect_interval=RECONNECT_INTERVAL,
    )

    def on_lost(_: Any, exc: BaseException | None) -> None:
        if not connection.close_called:
            log.warning(
                "broker.connection_lost", connection=name, error=repr(exc), next=connection.node
            )

    def on_reconnected(_: Any) -> None:
        log.info("broker.reconnected", connection=name, node=connection.node)

    connection.close_callbacks.add(on_lost)
    connection.reconnect_callbacks.add(on_reconnected)
    log.info("broker.connected", connection=name, node=connection.node)
    return connection


def broker_connected(connection: AbstractRobustConnection) -> bool:
    """True while the connection is up; a robust connection that is reconnecting is not closed,
    so ``is_closed`` cannot tell an outage."""
    return connection.connected.is_set() and not connection.is_closed


async def declare_topology(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Declares :meth:`Topology.definition`: exchanges, every service's queue and DLQ, bindings;
    idempotent. Returns the events exchange.

    Declared once, never again on a reconnect: a robust channel re-declares what it declared
    (and re-binds) each time its connection comes back, and the DLQs are classic queues that
    live on one node. With that node gone a re-declare fails ``NOT_FOUND`` ("home node ... is
    down or inaccessible"), which fails the whole reconnect, so a connection that had declared
    the topology could not move to a live node of the cluster (issue 16). Everything declared
    here is durable and outlives the connection; there is nothing a re-declare would restore.
    """
    once: dict[str, Any] = {"robust": False} if isinstance(channel, AbstractRobustChannel) else {}
    definition = topology.definition()
    exchanges = {
        e.name: await channel.declare_exchange(
            e.name, aio_pika.ExchangeType(e.kind), durable=True, **once
        )
        for e in definition.exchanges
    }
    queues = {
        q.name: await channel.declare_queue(q.name, durable=True, arguments=q.arguments, **once)
        for q in definition.queues
    }
    for b in definition.bindings:
        await queues[b.queue].bind(
            exchanges[b.exchange], routing_key=b.routing_key, arguments=b.arguments
        )
    return exchanges[topology.exchange]


async def check_topology(channel: AbstractChannel, topology: Topology, service: str) -> None:
    """Passive declares of what ``service`` uses: they need no permission at all, whereas
    re-declaring an existing queue, even with the same arguments, needs configure permission.
    A missing entity fails the start with the broker's 404, naming it."""
    await channel.get_exchange(topology.exchange, ensure=True)
    await channel.get_exchange(topology.dead_exchange, ensure=True)
    await channel.get_exchange(topology.audit_exchange, ensure=True)
    for queue in topology.consumed_queues(service):
        await channel.get_queue(queue, ensure=True)


async def upgrade_topology(connection: AbstractConnection, topology: Topology) -> None:
    """Declares the topology on a channel of its own and retires what earlier releases had."""
    setup = await connection.channel()
    try:
        await declare_topology(setup, topology)
    finally:
        await setup.close()
    await retire_queues(connection, topology)


async def prepare_topology(
    connection: AbstractConnection, topology: Topology, service: str, *, declare: bool
) -> None:
    """Declares and upgrades the topology (development, tests), or only checks it
    (least-privilege users)."""
    if declare:
        await upgrade_topology(connection, topology)
        return
    setup = await connection.channel()
    try:
        await check_topology(setup, topology, service)
    finally:
        await setup.close()


async def existing_queues(connection: AbstractConnection, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` exist (passive declares on a channel of their own: a missing queue's
    404 closes the channel it was asked on)."""
    found = []
    for name in names:
        channel = await connection.channel()
        try:
            await channel.get_queue(name, ensure=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            continue
        found.append(name)
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.close()
    return found


async def retire_queues(connection: AbstractConnection, topology: Topology) -> None:
    """Unbinds the queues earlier releases had and this one no longer feeds (the unsplit
    allocator queue), so new events go only to their successors; their consumers drain what
    waits there. Needs the rights :func:`declare_topology` needs; nothing to do on a broker
    that never had them."""
    for service in CONSUMERS:
        retired = await existing_queues(connection, topology.retired_queues(service))
        if not retired:
            continue
        channel = await connection.channel()
        try:
            for binding in topology.retired_bindings(service):
                if binding.queue in retired:
                    queue = await channel.get_queue(binding.queue, ensure=False)
                    await queue.unbind(
                        binding.exchange,
                        routing_key=binding.routing_key,
                        arguments=binding.arguments,
                    )
            log.info("broker.queues_retired", queues=retired)
        finally:
            await channel.close()


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Removes a namespace's exchanges and queues (tests clean up after themselves)."""
    definition = topology.definition()
    for queue in definition.queues:
        await channel.queue_delete(queue.name)
    for exchange in definition.exchanges:
        await channel.exchange_delete(exchange.name)


class EventPublisher(Protocol):
    """Where encoded events go; the one real implementation is :class:`AmqpPublisher`."""

    async def publish(self, message: OutgoingMessage) -> None: ...


class BrokerUnavailable(ConnectionError):
    """The broker is not connected (an outage, or a reconnect under way): try again later."""


class AmqpPublisher:
    """Publishes persistent messages with publisher confirms and ``mandatory``.

    ``publish`` returns only once the broker confirmed the message; an
    unroutable message raises (the channel is opened with
    ``on_return_raises=True``), so the outbox keeps it for a later try.

    While the broker is away ``publish`` fails at once instead of waiting for the
    robust connection to come back (aio-pika would wait forever): the caller,
    an HTTP request answering ``202``, must not hang on an outage, and the
    outbox sweep publishes later. A confirm that does not come within
    ``confirm_timeout`` fails the same way.

    A publish that was nacked or never confirmed also retires its channel: the next one goes
    through a fresh channel. A channel keeps what it learnt of each queue it routes to, and
    after a cluster node is lost RabbitMQ 3.10 kept nacking every publish of a channel whose
    cached state pointed at the feed stream's lost writer (two minutes, until the test gave
    up), while fresh channels published at once.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        exchanges: dict[str, str],
        *,
        confirm_timeout: float = 5.0,
    ) -> None:
        self._connection = connection
        self._exchange_names = exchanges
        self._confirm_timeout = confirm_timeout
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._opening = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        connection: AbstractRobustConnection,
        exchange_name: str,
        *,
        audit_exchange_name: str | None = None,
    ) -> AmqpPublisher:
        """A publisher to the events exchange and, when named, the internal audit exchange
        (the messages say which: :attr:`OutgoingMessage.exchange`)."""
        exchanges = {"events": exchange_name}
        if audit_exchange_name:
            exchanges["audit"] = audit_exchange_name
        publisher = cls(connection, exchanges)
        await publisher._current_channel()
        return publisher

    async def publish(self, message: OutgoingMessage) -> None:
        if not broker_connected(self._connection):
            raise BrokerUnavailable("not connected to the broker")
        if message.exchange not in self._exchange_names:  # kept in the outbox for a publisher
            raise BrokerUnavailable(f"this publisher does not publish to {message.exchange}")
        channel: AbstractChannel | None = None
        try:
            async with asyncio.timeout(self._confirm_timeout):
                channel = await self._current_channel()
                await self._exchanges[message.exchange].publish(
                    aio_pika.Message(
                        body=message.body.encode(),
                        content_type=CONTENT_TYPE,
                        message_id=message.id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=message.routing_key,
                    mandatory=True,
                )
        except (aio_pika.exceptions.DeliveryError, TimeoutError):
            if channel is not None:
                await self._retire(channel)
            raise

    async def _current_channel(self) -> AbstractChannel:
        async with self._opening:
            if self._channel is None:
                channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
                self._exchanges = {
                    key: await channel.get_exchange(name, ensure=False)
                    for key, name in self._exchange_names.items()
                }
                self._channel = channel
            return self._channel

    async def _retire(self, channel: AbstractChannel) -> None:
        """Drops ``channel`` (unless another publish did already); the next publish opens one."""
        async with self._opening:
            if self._channel is not channel:
                return
            self._channel = None
        log.info("publisher.channel_retired", reason="a publish was nacked or not confirmed")
        with contextlib.suppress(Exception):  # it may be closed already; it is dropped anyway
            await channel.close()


class EventConsumer:
    """Consumes one service's queue and dispatches each event through its bound handler table.

    * Poison (never handleable) goes to the service's DLQ at once, with the
      reason in a header, and is acked so it blocks nothing behind it.
    * Failures are retried in place with backoff and jitter (:func:`retry_in_place`):
      outages for as long as they last, a :class:`RetryLater` for ``retry_timeout``;
      what still fails is nacked and requeued, and the queue's delivery limit
      dead-letters it eventually instead of looping forever.
    * The message is acked only after its handler returned, i.e. after the
      handler's own write is durable.
    """

    def __init__(
        self,
        *,
        connection: AbstractRobustConnection,
        topology: Topology,
        handlers: Handlers,
        prefetch: int = 32,
        retry_timeout: float = 45.0,
    ) -> None:
        """Raises :class:`~vcs_shared.topology.SubscriptionMismatch` when the table handles other
        events than the service's queue receives."""
        require_subscribed(handlers.service, handlers.events)
        self._connection = connection
        self._topology = topology
        self._service = handlers.service
        self._handlers = handlers
        self._prefetch = prefetch
        self._retry_timeout = retry_timeout
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._handling = asyncio.Semaphore(prefetch)
        self._stopping = False
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        """Subscribes to the service's queues: its one queue, or all its shards in a random
        order (a shard's single active consumer is its first subscriber, so allocators started
        together share the shards), and a retired queue while it exists, to drain it.

        The prefetch is per queue (quorum queues have no channel-wide limit); the handlers
        running at once are bounded by ``prefetch`` across the queues."""
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        self._channel = channel
        shards = self._topology.consumed_queues(self._service)
        retired = await existing_queues(
            self._connection, self._topology.retired_queues(self._service)
        )
        for name in random.sample(shards, len(shards)):
            # A passive declare, not ``get_queue``: only declared queues are registered with
            # the robust channel, and only those get their consumer back after a reconnect.
            queue = await channel.declare_queue(name, passive=True)
            self._consumers.append((queue, await queue.consume(self._on_message)))
        for name in retired:
            # Not registered: once emptied it may be deleted, and re-declaring a deleted queue
            # would fail the reconnect. A reconnect ends the draining; the next start resumes it.
            queue = await channel.declare_queue(name, passive=True, robust=False)
            self._consumers.append((queue, await queue.consume(self._on_message)))
        log.info(
            "consumer.started",
            queues=[queue.name for queue, _ in self._consumers],
            prefetch=self._prefetch,
        )

    async def stop(self, *, grace: float = 15.0) -> None:
        """Stops taking messages, then waits for the ones in hand to finish (graceful shutdown).

        A handler still busy after ``grace`` (retrying through an outage, say) is cancelled:
        its message was not acked, so the broker gives it to the next consumer, and handlers
        are idempotent. Without the bound a shutdown could outlast the supervisor's patience
        and end in a SIGKILL anyway.
        """
        self._stopping = True
        for queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except aio_pika.exceptions.AMQPError:
                log.warning("consumer.cancel_failed", queue=queue.name)
        if self._in_flight:
            _, busy = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in busy:
                task.cancel()
            if busy:
                log.warning("consumer.abandoned_in_flight", messages=len(busy))
            await asyncio.gather(*busy, return_exceptions=True)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        log.info("consumer.stopped", service=self._service)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """Handles ``message`` in a task of its own, shielded from the channel's fate.

        aiormq cancels every running consumer callback when its channel closes (a node lost,
        an outage). A handler cut off between its side effect and the record of it (a mail
        sent, ``delivered`` not yet written) leaves its claim standing and the side effect
        unrecorded, so the redelivered copy would wait for the claim to lapse and do it again.
        Shielded, the handler finishes; only its ack fails, and the copy the broker redelivers
        finds the work recorded. :meth:`stop` still bounds how long such a handler may run.
        """
        handling = asyncio.create_task(self._handle_in_turn(message))
        self._in_flight.add(handling)
        handling.add_done_callback(self._finished)
        await asyncio.shield(handling)

    def _finished(self, handling: asyncio.Task[None]) -> None:
        """Forgets a finished handling; what it raised is logged here, since the callback that
        awaited it may have been cancelled already."""
        self._in_flight.discard(handling)
        if not handling.cancelled() and (error := handling.exception()) is not None:
            log.error("consumer.handling_crashed", error=repr(error))

    async def _handle_in_turn(self, message: AbstractIncomingMessage) -> None:
        """Handles ``message`` once fewer than ``prefetch`` others are being handled; one not
        begun when the consumer stops is left unacked, and the broker gives it to the next."""
        async with self._handling:
            if self._stopping:
                return
            await self._handle(message)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        structlog.contextvars.clear_contextvars()
        try:
            envelope = decode(message.body)
        except PoisonMessage as exc:
            try:
                await self._dead_letter(message, str(exc))
            except Exception as failure:  # the DLQ publish failed: keep the message, try again
                log.warning("consumer.dead_letter_failed", error=repr(failure))
                await self._settle(message.nack(requeue=True))
            return
        structlog.contextvars.bind_contextvars(
            event_id=envelope.id,
            event_type=envelope.event.name,
            request_id=envelope.event.request_id,
            correlation_id=envelope.correlation_id or envelope.event.request_id,
        )
        handler = self._handlers.handler_for(envelope.event)
        if handler is None:
            log.info("consumer.ignored", reason="no handler for this event type")
            await message.ack()
            MESSAGES.labels(self._topology.queue(self._service), "ignored").inc()
            return
        try:
            with consuming_span(envelope.event.name, envelope.trace):
                await self._handle_with_retries(handler, envelope)
        except Exception:
            log.exception("consumer.handler_failed", redelivered=message.redelivered)
            await self._settle(message.nack(requeue=True))
            MESSAGES.labels(self._topology.queue(self._service), "requeued").inc()
            return
        await self._settle(message.ack())
        MESSAGES.labels(self._topology.queue(self._service), "handled").inc()

    async def _handle_with_retries(self, handler: BoundHandler, envelope: Envelope[Event]) -> None:
        """Runs the handler; a failure :func:`retry_in_place` retries goes on in stamina's
        retry loop (its first retry at once, then with backoff and jitter).

        The first attempt runs outside stamina: setting up its retry loop (tenacity) for every
        message cost about a sixth of the intake's CPU per event, and nearly every message
        succeeds the first time."""
        retry = retry_in_place(self._retry_timeout)
        try:
            await handler(envelope)
        except Exception as error:
            if not retry(error):
                raise
            log.warning("consumer.retrying", error=repr(error))
            async for attempt in stamina.retry_context(on=retry, attempts=None, timeout=None):
                with attempt:
                    await handler(envelope)

    async def _settle(self, settlement: Awaitable[None]) -> None:
        """Acks or nacks; if the channel died meanwhile the broker redelivers the message,
        which idempotent handlers absorb, so a failure here is only logged."""
        try:
            await settlement
        except Exception as exc:  # a closed channel raises one of several aio-pika types
            log.warning("consumer.settle_failed", error=repr(exc))

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Sends a poison message to this service's DLQ with why, then acks the original."""
        assert self._channel is not None
        log.warning("consumer.poison", reason=reason, routing_key=message.routing_key)
        headers = dict(message.headers or {})
        headers[DEAD_REASON_HEADER] = reason[:1000]
        headers[ORIGINAL_ROUTING_KEY_HEADER] = message.routing_key or ""
        dead = await self._channel.get_exchange(self._topology.dead_exchange, ensure=False)
        await dead.publish(
            aio_pika.Message(
                body=message.body,
                content_type=message.content_type,
                message_id=message.message_id,
                headers=headers,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=self._topology.queue(self._service),
            mandatory=True,
        )
        await message.ack()
        MESSAGES.labels(self._topology.queue(self._service), "dead_lettered").inc()
