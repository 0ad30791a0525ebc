"""The allocator's composition root: clients are made and everything is wired here, only here."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import structlog

from vcs_allocator.admin import create_admin_app
from vcs_allocator.availability_api import RoomRules
from vcs_allocator.handlers import HANDLERS, AllocatorDeps
from vcs_allocator.pool import load_pool_file
from vcs_allocator.reassign import Reassigner
from vcs_allocator.settings import AllocatorSettings
from vcs_allocator.store import MongoReservationStore
from vcs_allocator.zoom import ZoomClient
from vcs_allocator.zoom_budget import HostBudget
from vcs_allocator.zoom_passcodes import MongoPasscodeJobs, ZoomPasscodes
from vcs_shared import metrics, tracing
from vcs_shared.audit_trail import AuditTrail
from vcs_shared.auth import InternalAuthenticator, TokenCodec
from vcs_shared.clock import utc_now
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.health import reachability
from vcs_shared.http_server import InternalServer
from vcs_shared.lifecycle import wait_for_shutdown_signal
from vcs_shared.logging import configure_logging
from vcs_shared.runtime import consuming, every, service_clients

log = structlog.get_logger(__name__)

SERVICE = "allocator"


async def run(settings: AllocatorSettings) -> None:
    """Runs the allocator until SIGINT/SIGTERM, then finishes the messages in hand and stops."""
    async with service_clients(settings, SERVICE) as clients:
        sealer = CredentialsSealer(settings.credentials_keys.get_secret_value())
        store = MongoReservationStore(clients.database, clients.publisher, sealer)
        await store.ensure_indexes()
        if settings.pool_file is not None and await store.room_count() == 0:
            entries = load_pool_file(settings.pool_file)
            await store.replace_rooms([entry.sealed(sealer) for entry in entries])
            log.info("pool.loaded", file=str(settings.pool_file), rooms=len(entries))
        await store.pools.warm()
        zoom_client = None
        zoom = None
        background = [
            partial(
                _sweep_orphans, store, settings.orphan_lease(), settings.orphan_sweep_interval()
            )
        ]
        account = settings.zoom_account()
        if account is not None:
            zoom_client = ZoomClient(account)
            jobs = MongoPasscodeJobs(clients.database)
            await jobs.ensure_indexes()
            zoom = ZoomPasscodes(
                jobs=jobs,
                budget=HostBudget(clients.database, limit=settings.zoom_daily_limit_per_host),
                zoom=zoom_client,
                sealer=sealer,
                fallback=settings.zoom_fallback,
                lead=settings.policy().buffer,
            )
            background.append(partial(_apply_passcodes, zoom, store, settings.zoom_poll_seconds))
            log.info("zoom.passcodes_on", fallback=settings.zoom_fallback)
        deps = AllocatorDeps(
            store=store,
            sealer=sealer,
            policy=settings.policy(),
            use_overflow=settings.use_overflow,
            claim_lease=settings.orphan_lease(),
            zoom=zoom,
        )
        trail = AuditTrail(clients.database, source=SERVICE, publisher=clients.publisher)
        await trail.ensure_indexes()
        admin = None
        if settings.admin_port:  # a taken port is logged; allocating goes on without the API
            authenticator = InternalAuthenticator(
                TokenCodec(settings.jwt_secret.get_secret_value())
            )
            admin = await InternalServer.start(
                create_admin_app(
                    store,
                    authenticator,
                    Reassigner(
                        store,
                        deps.sealer,
                        RoomRules(deps.policy, deps.use_overflow),
                        zoom=zoom,
                    ),
                    lambda: reachability(clients.database, clients.connection),
                    trail,
                ),
                settings.admin_host,
                settings.admin_port,
            )
        try:
            async with consuming(
                clients,
                HANDLERS.bind(deps),
                store.relay,
                prefetch=settings.prefetch,
                background=background,
                more_relays=(trail.relay,),
            ):
                log.info("allocator.signal", signal=await wait_for_shutdown_signal())
        finally:  # also when consuming could not start: the admin API must not outlive it
            if admin is not None:
                await admin.stop()
            if zoom_client is not None:
                await zoom_client.aclose()


async def _sweep_orphans(
    store: MongoReservationStore, lease: timedelta, interval: float, stop: asyncio.Event
) -> None:
    """Frees slots a crashed allocation left behind, once their lease has run out.

    A full batch is followed at once by the next one, so a busy day's
    unconfirmed slots never pile up between sweeps.
    """

    async def sweep() -> bool:
        swept = await store.sweep_orphans(lease)
        if swept.freed:
            log.warning("slots.orphans_freed", claims=swept.freed, confirmed=swept.confirmed)
        return swept.full

    await every(interval, sweep, stop, failed="slots.sweep_failed")


async def _apply_passcodes(
    zoom: ZoomPasscodes, store: MongoReservationStore, interval: float, stop: asyncio.Event
) -> None:
    """Sets the due per-booking Zoom passcodes every ``interval`` seconds; every allocator
    process runs this, and each job's claim lets one of them PATCH it."""

    async def apply() -> bool:
        return await zoom.apply_due(store, utc_now()) > 0  # a full batch may have more behind

    await every(interval, apply, stop, failed="zoom.apply_failed")


def main() -> None:
    settings = AllocatorSettings()
    configure_logging(SERVICE, json=settings.log_json, level=settings.log_level)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    tracing.configure_tracing(SERVICE, settings.otlp_endpoint)
    asyncio.run(run(settings))
