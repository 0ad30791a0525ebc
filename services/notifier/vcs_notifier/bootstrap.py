"""The notifier's composition root: clients are made and everything is wired here, only here."""

from __future__ import annotations

import asyncio

import structlog

from vcs_notifier.handlers import HANDLERS, NotifierDeps
from vcs_notifier.mailer import SmtpMailer
from vcs_notifier.settings import NotifierSettings
from vcs_notifier.store import MongoDeliveryStore
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.lifecycle import wait_for_shutdown_signal
from vcs_shared.logging import configure_logging
from vcs_shared.runtime import consuming, service_clients

log = structlog.get_logger(__name__)

SERVICE = "notifier"


async def run(settings: NotifierSettings) -> None:
    """Runs the notifier until SIGINT/SIGTERM, then finishes the messages in hand and stops."""
    async with service_clients(settings, SERVICE) as clients:
        store = MongoDeliveryStore(clients.database, clients.publisher)
        await store.ensure_indexes()
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        deps = NotifierDeps(
            store=store,
            mailer=SmtpMailer(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_seconds,
            ),
            sealer=CredentialsSealer(settings.credentials_keys.get_secret_value()),
            sender=settings.mail_from,
            send_attempts=settings.send_attempts,
        )
        handlers = HANDLERS.bind(deps)
        async with consuming(clients, handlers, store.relay, prefetch=settings.prefetch):
            log.info("notifier.signal", signal=await wait_for_shutdown_signal())


def main() -> None:
    settings = NotifierSettings()
    configure_logging(SERVICE, json=settings.log_json, level=settings.log_level)
    asyncio.run(run(settings))
