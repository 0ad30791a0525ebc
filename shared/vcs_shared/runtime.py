"""The lifecycle every service shares: its clients, and consuming until told to stop.

Each service's ``bootstrap.py`` stays the one place where its own parts are
made and wired; what is the same for all three (open the store and the broker
with the topology ready, run the consumer and the outbox relay, stop in the
right order so in-flight work finishes) lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import stamina
import structlog
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import AMQPError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from vcs_shared.broker import (
    OUTAGES,
    AmqpPublisher,
    EventConsumer,
    broker_connected,
    connect,
    prepare_topology,
)
from vcs_shared.dispatch import Handlers
from vcs_shared.metrics import watch_connections
from vcs_shared.outbox import OutboxRelay
from vcs_shared.settings import CommonSettings
from vcs_shared.store import Document, database_name, make_client
from vcs_shared.store_watchdog import StoreWatchdog
from vcs_shared.topology import Topology

log = structlog.get_logger(__name__)

BackgroundLoop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def every(
    interval: float,
    step: Callable[[], Awaitable[bool | None]],
    stop: asyncio.Event,
    *,
    failed: str,
) -> None:
    """Runs ``step`` every ``interval`` seconds until ``stop``: the shape of a service's
    background loop (a sweep, reminders, a watch). ``step`` answering True means more is
    waiting (it handled a full batch), so it runs again at once. Whatever it raises is logged
    as ``failed`` and the loop goes on: a store outage must not stop it for good."""
    while not stop.is_set():
        try:
            if await step():
                continue
        except Exception as exc:  # the loop must outlive any outage, whatever it raises
            log.warning(failed, error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


@dataclass(frozen=True, slots=True)
class ServiceClients:
    """The connections of one service process, made by :func:`service_clients`."""

    service: str
    topology: Topology
    database: AsyncDatabase[Document]
    connection: AbstractRobustConnection
    publisher: AmqpPublisher
    store_url: str = field(repr=False)  # for the watchdog's fresh client; holds the password


@asynccontextmanager
async def service_clients(settings: CommonSettings, service: str) -> AsyncIterator[ServiceClients]:
    """The service's own database and a broker connection with the topology ready; closed after."""
    topology = Topology(settings.namespace)
    mongo: AsyncMongoClient[Document] = make_client(
        settings.mongodb_url.get_secret_value(), app_name=service
    )
    try:
        connection = await dependencies_ready(mongo, settings.amqp_url.get_secret_value(), service)
        try:
            await prepare_topology(connection, topology, service, declare=settings.declare_topology)
            publisher = await AmqpPublisher.open(
                connection, topology.exchange, audit_exchange_name=topology.audit_exchange
            )
            yield ServiceClients(
                service=service,
                topology=topology,
                database=mongo[database_name(settings.namespace, service)],
                connection=connection,
                publisher=publisher,
                store_url=settings.mongodb_url.get_secret_value(),
            )
        finally:
            await connection.close()
    finally:
        await mongo.close()


@asynccontextmanager
async def database_afresh(clients: ServiceClients) -> AsyncIterator[AsyncDatabase[Document]]:
    """The service's database over a client of its own, closed after: for a write that must
    land while the service's own client stays broken after a store freeze (PyMongo's async
    client can, until the process restarts: :mod:`vcs_shared.store_watchdog`)."""
    client = make_client(clients.store_url, app_name=f"{clients.service}-afresh")
    try:
        yield client[clients.database.name]
    finally:
        await client.close()


STARTUP_WAIT = 120.0


async def dependencies_ready(
    mongo: AsyncMongoClient[Document], amqp_url: str, service: str, *, within: float = STARTUP_WAIT
) -> AbstractRobustConnection:
    """Waits (with backoff, up to ``within`` seconds) until the store answers and a broker node
    accepts, and returns the broker connection.

    A service restarted while the store is frozen or the broker is restarting would
    otherwise exit at once, be restarted, exit again, and look like a crash loop to its
    supervisor, which then stops the whole system (a chaos soak did exactly that). Only a
    dependency still away after ``within`` makes the start fail.
    """
    async for attempt in stamina.retry_context(
        on=(PyMongoError, ConnectionError, OSError, AMQPError),
        timeout=within,
        attempts=None,
        wait_initial=0.5,
        wait_max=5.0,
    ):
        with attempt:
            if attempt.num > 1:
                log.warning(
                    "startup.waiting_for_dependencies", service=service, attempt=attempt.num
                )
            await mongo.admin.command("ping")
            return await connect(amqp_url, name=service)
    raise AssertionError("unreachable: the retry either returns or raises")


async def _watch(clients: ServiceClients, stop: asyncio.Event) -> None:
    await watch_connections(
        lambda: broker_connected(clients.connection),
        lambda: clients.database.command("ping"),
        stop,
        on_store=StoreWatchdog(clients.store_url).observe,
    )


async def start_once_connected(
    consumer: EventConsumer, connection: AbstractRobustConnection, *, within: float = 300.0
) -> None:
    """Starts consuming, waiting out a broker that went away after the service connected.

    A service restarted by the supervisor during a broker outage (both faults at once in a
    chaos soak) connected, then lost the broker before its first channel: aio-pika raised
    ``RuntimeError: Connection was not opened``, the start-up failed and the process exited,
    one step nearer the supervisor's crash-loop limit. The robust connection comes back by
    itself; the start-up waits for it instead (and still fails on anything else).
    """

    def broker_gone(exc: Exception) -> bool:
        return isinstance(exc, OUTAGES) or (
            isinstance(exc, RuntimeError) and not connection.connected.is_set()
        )

    async for attempt in stamina.retry_context(
        on=broker_gone, attempts=None, timeout=within, wait_initial=0.5, wait_max=5.0
    ):
        with attempt:
            if attempt.num > 1:
                log.warning("startup.waiting_for_broker", attempt=attempt.num)
            await consumer.start()


@asynccontextmanager
async def consuming(
    clients: ServiceClients,
    handlers: Handlers,
    relay: OutboxRelay,
    *,
    prefetch: int,
    background: Sequence[BackgroundLoop] = (),
    more_relays: Sequence[OutboxRelay] = (),
) -> AsyncIterator[None]:
    """Consumes the service's queue through ``handlers`` and relays its outbox (and
    ``more_relays``: its audit trail's) while the block runs; then stops taking messages,
    lets the ones in hand finish, stops the background loops
    and publishes what their handlers stored."""
    service = clients.service
    consumer = EventConsumer(
        connection=clients.connection,
        topology=clients.topology,
        handlers=handlers,
        prefetch=prefetch,
    )
    await start_once_connected(consumer, clients.connection)  # first: nothing else started
    stop = asyncio.Event()
    relays = (relay, *more_relays)
    tasks = [asyncio.create_task(r.run(stop), name=f"{service}-outbox-relay") for r in relays]
    tasks += [asyncio.create_task(loop(stop), name=f"{service}-background") for loop in background]
    tasks.append(asyncio.create_task(_watch(clients, stop), name=f"{service}-connections"))
    log.info(f"{service}.ready")
    try:
        yield
    finally:
        log.info(f"{service}.stopping")
        await consumer.stop()
        stop.set()
        await asyncio.gather(*tasks)
        for each in relays:
            await each.sweep(include_fresh=True)
        log.info(f"{service}.stopped")
