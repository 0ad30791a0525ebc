"""The notifier's composition root: clients are made and everything is wired here, only here."""

from __future__ import annotations

import asyncio

import structlog

from vcs_notifier.handlers import NotifierDeps, handler_table
from vcs_notifier.mailer import SmtpMailer
from vcs_notifier.settings import NotifierSettings
from vcs_notifier.store import MongoDeliveryStore
from vcs_shared.broker import AmqpPublisher, EventConsumer, Topology, connect, prepare_topology
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.lifecycle import wait_for_shutdown_signal
from vcs_shared.logging import configure_logging
from vcs_shared.outbox import OutboxRelay
from vcs_shared.store import database_name, make_client

log = structlog.get_logger(__name__)

SERVICE = "notifier"


async def run(settings: NotifierSettings) -> None:
    """Runs the notifier until SIGINT/SIGTERM, then finishes the messages in hand and stops."""
    topology = Topology(settings.namespace)
    mongo = make_client(settings.mongodb_url.get_secret_value(), app_name=SERVICE)
    store = MongoDeliveryStore(mongo[database_name(settings.namespace, SERVICE)])
    await store.ensure_indexes()

    connection = await connect(settings.amqp_url.get_secret_value(), name=SERVICE)
    setup = await connection.channel()
    await prepare_topology(setup, topology, SERVICE, declare=settings.declare_topology)
    await setup.close()
    publisher = await AmqpPublisher.open(connection, topology.exchange)
    relay = OutboxRelay(store.deliveries, publisher)
    deps = NotifierDeps(
        store=store,
        relay=relay,
        mailer=SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        ),
        sealer=CredentialsSealer(settings.credentials_keys.get_secret_value()),
        sender=settings.mail_from,
        send_attempts=settings.send_attempts,
    )
    consumer = EventConsumer(
        connection=connection,
        topology=topology,
        service=SERVICE,
        handlers=handler_table(deps),
        prefetch=settings.prefetch,
    )
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop), name="outbox-relay")
    await consumer.start()
    log.info("notifier.ready")
    signal_name = await wait_for_shutdown_signal()
    log.info("notifier.stopping", signal=signal_name)
    await consumer.stop()
    stop.set()
    await relay_task
    await relay.sweep(include_fresh=True)
    await connection.close()
    await mongo.close()
    log.info("notifier.stopped")


def main() -> None:
    settings = NotifierSettings()
    configure_logging(SERVICE, json=settings.log_json, level=settings.log_level)
    asyncio.run(run(settings))
