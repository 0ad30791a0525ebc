"""The notifier's composition root: clients are made and everything is wired here, only here."""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial

import structlog

from vcs_notifier.api import create_app
from vcs_notifier.handlers import HANDLERS, NotifierDeps, send_due_reminders
from vcs_notifier.mailer import MailChannel, SmtpMailer
from vcs_notifier.messages import write_mail
from vcs_notifier.settings import NotifierSettings
from vcs_notifier.store import MongoDeliveryStore, MongoReminderStore
from vcs_shared import metrics, tracing
from vcs_shared.auth import InternalAuthenticator, TokenCodec
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.health import reachability
from vcs_shared.http_server import InternalServer
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
        reminders = MongoReminderStore(clients.database)
        await reminders.ensure_indexes()
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        mailer = SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
        deps = NotifierDeps(
            store=store,
            channels=[MailChannel(mailer, settings.mail_from, write_mail)],
            sealer=CredentialsSealer(settings.credentials_keys.get_secret_value()),
            reminders=reminders,
            reminder_leads=settings.reminder_leads(),
            send_attempts=settings.send_attempts,
        )
        api = None
        if settings.notifier_port:  # a taken port is logged; delivering goes on without the API
            app = create_app(
                deps,
                InternalAuthenticator(TokenCodec(settings.jwt_secret.get_secret_value())),
                lambda: reachability(clients.database, clients.connection),
            )
            api = await InternalServer.start(app, settings.notifier_host, settings.notifier_port)
        try:
            async with consuming(
                clients,
                HANDLERS.bind(deps),
                store.relay,
                prefetch=settings.prefetch,
                background=[partial(_remind, deps, settings.reminder_poll_seconds)],
            ):
                log.info("notifier.signal", signal=await wait_for_shutdown_signal())
        finally:  # also when consuming could not start: the API must not outlive it
            if api is not None:
                await api.stop()


async def _remind(deps: NotifierDeps, interval: float, stop: asyncio.Event) -> None:
    """Sends due reminders every ``interval`` seconds; every notifier process runs this, and
    the store's claim lets each reminder go once."""
    while not stop.is_set():
        try:
            await send_due_reminders(deps)
        except Exception as exc:  # a store outage must not stop the reminders for good
            log.warning("reminders.failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def main() -> None:
    settings = NotifierSettings()
    configure_logging(SERVICE, json=settings.log_json, level=settings.log_level)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    tracing.configure_tracing(SERVICE, settings.otlp_endpoint)
    asyncio.run(run(settings))
