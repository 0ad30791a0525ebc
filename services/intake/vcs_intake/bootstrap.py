"""The intake's composition root: ``create_app`` wires everything; nothing connects at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
import structlog
import uvicorn
from fastapi import Depends, FastAPI
from pymongo.errors import ConnectionFailure

from vcs_intake.api import router
from vcs_intake.container import Container
from vcs_intake.contract_api import PublishedContract, contract_router
from vcs_intake.gateway import Gateway, forwarding_routes
from vcs_intake.live_feed import router as live_feed_router
from vcs_intake.people.accounts import Accounts
from vcs_intake.people.audit import AuditedInvitations, AuditedSignIns
from vcs_intake.people.store import MongoPeopleStore
from vcs_intake.projection import HANDLERS
from vcs_intake.resilience import AdmissionLimit, BodySizeLimit, store_unavailable
from vcs_intake.revocations import MongoRevocationList
from vcs_intake.settings import IntakeSettings
from vcs_intake.store import MongoRequestStore
from vcs_intake.stuck import watch_stuck
from vcs_intake.web.app import install_web
from vcs_intake.web.live import StatusHub
from vcs_intake.web.rendering import Pages
from vcs_shared import metrics, tracing
from vcs_shared.access_log import AccessLog
from vcs_shared.audit import Actor
from vcs_shared.audit_trail import AuditTrail
from vcs_shared.auth import TokenAuthenticator, TokenCodec
from vcs_shared.clock import utc_now
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.http_auth import require_operator
from vcs_shared.logging import configure_logging
from vcs_shared.runtime import consuming, service_clients

log = structlog.get_logger(__name__)

SERVICE = "intake"

FORWARDED_ADMIN = {
    "/v1/admin/pools": "allocator",
    "/v1/admin/reservations": "allocator",
    "/v1/admin/dead-letters": "desk",
    "/v1/admin/requests": "desk",
    "/v1/admin/requests/{request_id}/history": "desk",
    "/v1/admin/requests/{request_id}/redeliver": "notifier",
    "/v1/admin/requests/{request_id}/reassign": "allocator",
    "/v1/admin/requests/{request_id}/free-rooms": "allocator",
    "/v1/admin/support": "desk",
    "/v1/admin/audit": "desk",
    "/v1/admin/utilisation": "allocator",
    "/v1/admin/audit.csv": "desk",
}
"""Operators' paths whose data another service owns: the intake forwards them there."""
FORWARDED = {
    "/v1/availability": "allocator",
    "/v1/support-requests": "desk",
    "/v1/offices": "notifier",
}
"""Paths for offices and operators alike that another service owns (it checks the caller)."""
UNKNOWN_COMMAND_LINE = Actor(kind="cli", id="cli:unknown", name="a command on the server")
"""Who invited when no operator did (the pages always have one; only ``vcs user`` has not)."""
POOL_FILE_MAX_BYTES = 2_000_000
"""A whole pool file may be larger than any other body the intake takes."""


def create_app(settings: IntakeSettings) -> FastAPI:
    """The intake application; its clients are made when it starts, closed when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_clients(settings, SERVICE) as clients:
            store = MongoRequestStore(clients.database, clients.publisher)
            await store.ensure_indexes()
            people = MongoPeopleStore(clients.database)
            await people.ensure_indexes()
            trail = AuditTrail(clients.database, source=SERVICE, publisher=clients.publisher)
            await trail.ensure_indexes()
            app.state.audit_trail = trail
            app.state.accounts = Accounts(
                people,
                audit=AuditedSignIns(trail),
                invite_audit=AuditedInvitations(trail, command_line=UNKNOWN_COMMAND_LINE),
            )
            revocations = MongoRevocationList(clients.database)
            await revocations.ensure_indexes()
            codec = TokenCodec(settings.jwt_secret.get_secret_value())
            app.state.authenticator = TokenAuthenticator(codec, revocations)
            app.state.container = Container(
                store=store,
                sealer=CredentialsSealer(settings.credentials_keys.get_secret_value()),
                connection=clients.connection,
                rules=settings.booking_rules(),
                supervisor_status_file=settings.supervisor_status_file,
            )
            handlers = HANDLERS.bind(store).observed(hub.saw)
            stuck_after = settings.stuck_after
            async with (
                httpx.AsyncClient() as owners_client,
                consuming(
                    clients,
                    handlers,
                    store.relay,
                    prefetch=settings.prefetch,
                    background=[partial(watch_stuck, store, stuck_after, utc_now)],
                    more_relays=(trail.relay,),  # also the entries `vcs user`/`vcs token` wrote
                ),
            ):
                app.state.gateway = Gateway(
                    owners_client,
                    codec,
                    {
                        "allocator": settings.allocator_url,
                        "desk": settings.desk_url,
                        "notifier": settings.notifier_url,
                    },
                )
                yield

    hub = StatusHub()
    app = FastAPI(
        title="DOPA VCS intake",
        version="1.0.0",
        summary="District offices request DOPA VCS (Zoom) meeting rooms and read back credentials.",
        lifespan=lifespan,
        telemetry=tracing.HTTP_TELEMETRY,
        docs_url=None,  # served by install_web from the project's own files (no CDN)
        redoc_url=None,
    )
    app.state.pages = Pages()
    app.state.status_hub = hub
    app.include_router(router)
    app.include_router(live_feed_router)
    app.include_router(forwarding_routes(FORWARDED_ADMIN, dependencies=[Depends(require_operator)]))
    app.include_router(forwarding_routes(FORWARDED))
    app.include_router(contract_router(PublishedContract.read(settings.contract_dir)))
    install_web(
        app,
        jwt_secret=settings.jwt_secret.get_secret_value(),
        public_url=settings.public_url,
        node_modules=settings.web_assets_dir,
        single_sign_on=settings.single_sign_on(),
    )
    # Added after the CSRF middleware (install_web) and before the access log: it runs
    # inside the latter, so its error reaches FastAPI directly (not through another
    # middleware's task group, which would make it a 400), and it bounds what the CSRF
    # middleware reads of a form.
    app.add_middleware(
        BodySizeLimit,
        max_body_bytes=settings.max_body_bytes,
        larger={"/v1/admin/pools/reload": POOL_FILE_MAX_BYTES},
    )
    app.add_middleware(
        AdmissionLimit, limit=settings.max_submits_in_flight, method="POST", path="/v1/requests"
    )
    metrics.instrument(app)
    app.add_middleware(AccessLog)  # outermost: sees every answer, binds http_request_id
    app.add_exception_handler(ConnectionFailure, store_unavailable)
    return app


def main() -> None:
    settings = IntakeSettings()
    configure_logging(SERVICE, json=settings.log_json, level=settings.log_level)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    tracing.configure_tracing(SERVICE, settings.otlp_endpoint)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
    )
