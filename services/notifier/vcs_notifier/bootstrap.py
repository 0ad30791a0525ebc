"""The notifier's composition root: clients are made and everything is wired here, only here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial

import structlog

from vcs_notifier.api import create_app
from vcs_notifier.channels import Channel
from vcs_notifier.handlers import HANDLERS, NotifierDeps, replay_journal, send_due_reminders
from vcs_notifier.journal import FileJournal
from vcs_notifier.line import LineChannel, LineClient
from vcs_notifier.mailer import MailChannel, SmtpMailer
from vcs_notifier.messages import write_mail
from vcs_notifier.office_channels import OfficeChannels
from vcs_notifier.settings import NotifierSettings
from vcs_notifier.store import DeliveryStore, MongoDeliveryStore, MongoReminderStore
from vcs_notifier.webhook_delivery import WebhookDispatcher
from vcs_notifier.webhook_domain import RetryPolicy
from vcs_notifier.webhook_guard import NetworkPolicy, parse_networks
from vcs_notifier.webhook_store import MongoLineGroups, MongoWebhookStore
from vcs_notifier.webhooks import WebhookSender
from vcs_shared import metrics, tracing
from vcs_shared.auth import InternalAuthenticator, TokenCodec
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.health import reachability
from vcs_shared.http_server import InternalServer
from vcs_shared.lifecycle import wait_for_shutdown_signal
from vcs_shared.logging import configure_logging
from vcs_shared.runtime import (
    ServiceClients,
    consuming,
    database_afresh,
    every,
    service_clients,
)

log = structlog.get_logger(__name__)

SERVICE = "notifier"
JOURNAL_COMPACTION_SECONDS = 60.0
"""How often a notifier drops what it recorded from its journal of sent mails."""
MAIL_IDLE_CHECK_SECONDS = 10.0
"""How often the SMTP connections unused for their idle time are closed."""


async def run(settings: NotifierSettings) -> None:
    """Runs the notifier until SIGINT/SIGTERM, then finishes the messages in hand and stops."""
    async with service_clients(settings, SERVICE) as clients:
        store = MongoDeliveryStore(clients.database, clients.publisher)
        await store.ensure_indexes()
        reminders = MongoReminderStore(clients.database, clients.publisher)
        await reminders.ensure_indexes()
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        mailer = SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
            keep=settings.smtp_sessions,  # as many as can be sending at once
            sessions=settings.smtp_sessions,
        )
        sealer = CredentialsSealer(settings.credentials_keys.get_secret_value())
        webhooks = MongoWebhookStore(clients.database, sealer, clients.publisher)
        await webhooks.ensure_indexes()
        line_groups = MongoLineGroups(clients.database, clients.publisher)
        await line_groups.ensure_indexes()
        policy = NetworkPolicy(allowed=parse_networks(settings.webhook_allowed_networks))
        sender = WebhookSender(policy, timeout=settings.webhook_timeout_seconds)
        dispatcher = WebhookDispatcher(
            webhooks,
            sender,
            sealer,
            RetryPolicy(
                window=timedelta(hours=settings.webhook_retry_hours),
                initial=timedelta(seconds=settings.webhook_retry_initial_seconds),
            ),
        )
        channels: list[Channel] = [MailChannel(mailer, settings.mail_from, write_mail)]
        line = None
        if settings.line_channel_token is not None:
            line = LineClient(
                settings.line_channel_token.get_secret_value(), base_url=settings.line_api_url
            )
            channels.append(LineChannel(line, line_groups))
        journal = FileJournal(settings.send_journal).open()
        deps = NotifierDeps(
            store=store,
            channels=channels,
            sealer=sealer,
            reminders=reminders,
            reminder_leads=settings.reminder_leads(),
            send_attempts=settings.send_attempts,
            store_afresh=partial(_store_afresh, clients),
            journal=journal,
        )
        # Before consuming: what a killed predecessor sent but could not record is recorded,
        # so that no handler sends it again.
        await replay_journal(deps)
        api = None
        if settings.notifier_port:  # a taken port is logged; delivering goes on without the API
            app = create_app(
                deps,
                InternalAuthenticator(TokenCodec(settings.jwt_secret.get_secret_value())),
                lambda: reachability(clients.database, clients.connection),
                OfficeChannels(webhooks, line_groups, policy),
            )
            api = await InternalServer.start(app, settings.notifier_host, settings.notifier_port)
        handlers = HANDLERS.bind(deps).followed_by(dispatcher.schedule)
        try:
            async with consuming(
                clients,
                handlers,
                store.relay,
                prefetch=settings.prefetch,
                background=[
                    dispatcher.run,
                    webhooks.relay.run,
                    reminders.relay.run,
                    webhooks.settings_relay.run,
                    line_groups.relay.run,
                    partial(_remind, deps, settings.reminder_poll_seconds),
                    partial(
                        every, JOURNAL_COMPACTION_SECONDS, journal.compact, failed="journal.failed"
                    ),
                    partial(
                        every,
                        MAIL_IDLE_CHECK_SECONDS,
                        mailer.close_idle,
                        failed="mail.close_failed",
                    ),
                ],
            ):
                log.info("notifier.signal", signal=await wait_for_shutdown_signal())
        finally:  # also when consuming could not start: the API must not outlive it
            if api is not None:
                await api.stop()
            await sender.aclose()
            await mailer.aclose()
            if line is not None:
                await line.aclose()


@contextlib.asynccontextmanager
async def _store_afresh(clients: ServiceClients) -> AsyncIterator[DeliveryStore]:
    """The delivery store over a client of its own, for the record of a sent message
    (:func:`vcs_notifier.handlers._recorded`)."""
    async with database_afresh(clients) as database:
        yield MongoDeliveryStore(database, clients.publisher)


async def _remind(deps: NotifierDeps, interval: float, stop: asyncio.Event) -> None:
    """Sends due reminders every ``interval`` seconds; every notifier process runs this, and
    the store's claim lets each reminder go once."""

    async def remind() -> None:
        await send_due_reminders(deps)

    await every(interval, remind, stop, failed="reminders.failed")


def main() -> None:
    settings = NotifierSettings()
    configure_logging(SERVICE, json=settings.log_json, level=settings.log_level)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    tracing.configure_tracing(SERVICE, settings.otlp_endpoint)
    asyncio.run(run(settings))
