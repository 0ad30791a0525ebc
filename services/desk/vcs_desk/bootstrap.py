"""The desk's composition root: clients are made and everything is wired here, only here."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable

import structlog

from vcs_desk.api import create_app
from vcs_desk.audit_api import install_audit
from vcs_desk.audit_consumer import AuditConsumer
from vcs_desk.audit_log import AuditLog
from vcs_desk.deadletters import DeadLetters, count_dead_letters
from vcs_desk.feed_api import install_feed
from vcs_desk.live_feed import LiveFeed
from vcs_desk.request_board import RequestBoard
from vcs_desk.request_projection import HANDLERS, Projection
from vcs_desk.requests_api import install_requests
from vcs_desk.settings import DeskSettings
from vcs_desk.support import SupportDeps
from vcs_desk.support_api import install_support
from vcs_desk.ticket_store import MongoTicketStore
from vcs_shared import metrics, tracing
from vcs_shared.auth import InternalAuthenticator, TokenCodec
from vcs_shared.broker import (
    AmqpPublisher,
    EventConsumer,
    Topology,
    broker_connected,
    prepare_topology,
)
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.health import reachability
from vcs_shared.http_server import InternalServer
from vcs_shared.lifecycle import wait_for_shutdown_signal
from vcs_shared.logging import configure_logging
from vcs_shared.runtime import dependencies_ready
from vcs_shared.store import database_name, make_client
from vcs_shared.store_watchdog import StoreWatchdog

log = structlog.get_logger(__name__)

SERVICE = "desk"


async def run(settings: DeskSettings) -> int:
    """Serves the internal API until SIGINT/SIGTERM; 1 if its port cannot be had."""
    topology = Topology(settings.namespace)
    mongo = make_client(settings.mongodb_url.get_secret_value(), app_name=SERVICE)
    try:
        database = mongo[database_name(settings.namespace, SERVICE)]
        connection = await dependencies_ready(mongo, settings.amqp_url.get_secret_value(), SERVICE)
        try:
            await prepare_topology(connection, topology, SERVICE, declare=settings.declare_topology)
            letters = DeadLetters(connection, topology)
            await letters.check()
            app = create_app(
                letters,
                InternalAuthenticator(TokenCodec(settings.jwt_secret.get_secret_value())),
                lambda: reachability(database, connection),
            )
            tickets = MongoTicketStore(
                database,
                await AmqpPublisher.open(
                    connection, topology.exchange, audit_exchange_name=topology.audit_exchange
                ),
            )
            await tickets.ensure_indexes()
            sealer = CredentialsSealer(settings.credentials_keys.get_secret_value())
            support = SupportDeps(tickets, sealer)
            install_support(app, support)
            feed = await LiveFeed.start(connection, topology, database)
            install_feed(app, feed)
            audit_log = AuditLog(database)
            await audit_log.ensure_indexes()
            install_audit(app, audit_log)
            audit = AuditConsumer(connection, topology, audit_log)
            await audit.start()
            board = RequestBoard(database)
            await board.ensure_indexes()
            install_requests(app, board, settings.stuck_after)
            projection = EventConsumer(
                connection=connection,
                topology=topology,
                handlers=HANDLERS.bind(Projection(board, support)),
            )
            await projection.start()
            stop_relay = asyncio.Event()
            relay = asyncio.create_task(tickets.relay.run(stop_relay), name="desk-outbox-relay")
            watches = [
                asyncio.create_task(
                    metrics.watch_connections(
                        lambda: broker_connected(connection),
                        lambda: database.command("ping"),
                        stop_relay,
                        on_store=StoreWatchdog(settings.mongodb_url.get_secret_value()).observe,
                    ),
                    name="desk-connections",
                ),
                asyncio.create_task(count_dead_letters(letters, stop_relay), name="desk-dlq-count"),
            ]
            try:
                server = await InternalServer.start(app, settings.desk_host, settings.desk_port)
                if server is None:
                    return 1
                log.info(f"{SERVICE}.ready")
                log.info(f"{SERVICE}.signal", signal=await wait_for_shutdown_signal())
            finally:
                await _bounded("audit consumer", audit.stop())
                await _bounded("request projection", projection.stop())
                # ends the watchers' streams, so the server stops at once
                await _bounded("live feed", feed.stop())
                stop_relay.set()
                await _bounded("outbox relay", relay)
                await _bounded("metrics watches", asyncio.gather(*watches))
            await _bounded("internal API", server.stop())
            await _bounded("outbox sweep", tickets.relay.sweep(include_fresh=True))
            log.info(f"{SERVICE}.stopped")
            return 0
        finally:
            await connection.close()
    finally:
        await mongo.close()


STEP_GRACE = 6.0


async def _bounded(step: str, work: Awaitable[object]) -> None:
    """One step of the shutdown, given at most :data:`STEP_GRACE` seconds: the supervisor
    SIGKILLs a service still stopping after 30 s, and a step stuck on a broker or store
    that went away must not hide the others (what it held is redelivered anyway)."""
    try:
        await asyncio.wait_for(work, timeout=STEP_GRACE)
    except TimeoutError:
        log.warning(f"{SERVICE}.stop_step_slow", step=step, after_s=STEP_GRACE)


def main() -> None:
    settings = DeskSettings()
    configure_logging(SERVICE, json=settings.log_json, level=settings.log_level)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    tracing.configure_tracing(SERVICE, settings.otlp_endpoint)
    sys.exit(asyncio.run(run(settings)))
