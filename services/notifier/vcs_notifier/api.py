"""The notifier's internal API: what the intake forwards to it, for operators only.

Reached only through the intake, with an internal token
(:class:`~vcs_shared.auth.InternalAuthenticator`); scoped to the caller's
provinces (:mod:`vcs_shared.scope`): a request outside them is ``404``, as if
it did not exist.

* ``POST /v1/admin/requests/{request_id}/redeliver`` — the credentials sent again
  to the office; answers how it went (``delivered``, or ``failed`` with the reason),
  recorded and announced like the first sending.
* ``GET  /healthz`` — open: whether the broker and the store are reachable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Request, status
from pydantic import BaseModel, Field

from vcs_notifier.handlers import NotifierDeps, RedeliveryRefused, redeliver
from vcs_notifier.office_channels import OfficeChannels
from vcs_notifier.office_channels_api import Channels as OfficeChannelsDep
from vcs_notifier.office_channels_api import router as office_channels_router
from vcs_shared.access_log import AccessLog
from vcs_shared.auth import Authenticator
from vcs_shared.health import HealthCheck, health_router
from vcs_shared.http_auth import (
    OperatorPrincipal,
    OperatorScope,
    not_in_scope,
    operator_router,
)

router = operator_router("/v1/admin", tags=["admin"])


def get_deps(request: Request) -> NotifierDeps:
    deps: NotifierDeps = request.app.state.deps
    return deps


Deps = Annotated[NotifierDeps, Depends(get_deps)]
RequestId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Redelivery(BaseModel):
    """How sending the credentials again went."""

    request_id: str
    state: Literal["delivered", "failed"]
    channel: str | None = Field(description="The channel it went by (email)")
    at: datetime
    error: str | None = Field(description="Why it failed, on one line (None when delivered)")


@router.post(
    "/requests/{request_id}/redeliver",
    response_model=Redelivery,
    responses={
        404: {"description": "No request of the caller's provinces with this id"},
        409: {"description": "Nothing to send again (no room, cancelled, a sending under way)"},
    },
)
async def redeliver_credentials(
    request_id: RequestId,
    deps: Deps,
    scope: OperatorScope,
    principal: OperatorPrincipal,
    channels: OfficeChannelsDep,
) -> Redelivery:
    """Sends the credentials of a request again (after ``delivery_failed``, or when the office
    lost them), and answers once it went out or finally failed; either way recorded and
    announced (``credentials.delivered`` / ``credentials.failed``). The request's webhook
    messages that had failed for good are tried again from now, with a fresh retry window."""
    try:
        outcome = await redeliver(request_id, scope, deps, by=principal)
    except RedeliveryRefused as exc:
        if exc.missing:
            raise not_in_scope("request") from exc
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    await channels.webhooks.revive(request_id, deps.clock())  # its failed webhook messages too
    return Redelivery(
        request_id=request_id,
        state=outcome.state,
        channel=outcome.channel,
        at=outcome.at,
        error=outcome.error,
    )


def create_app(
    deps: NotifierDeps,
    authenticator: Authenticator,
    health: HealthCheck,
    office_channels: OfficeChannels,
) -> FastAPI:
    """The notifier's internal app (the composition root passes in what it works with)."""
    app = FastAPI(
        title="DOPA VCS notifier (internal)",
        version="1",
        description=(
            "Deliveries of credentials to the offices. Internal: reached through the intake, "
            "which forwards /v1/admin/requests/{id}/redeliver and /v1/offices/* (the offices' "
            "webhook and LINE settings) with an internal token."
        ),
    )
    app.add_middleware(AccessLog)
    app.state.deps = deps
    app.state.authenticator = authenticator
    app.state.health = health
    app.state.office_channels = office_channels
    app.include_router(router)
    app.include_router(office_channels_router)
    app.include_router(health_router)
    return app
