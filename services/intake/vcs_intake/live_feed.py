"""``GET /v1/admin/feed`` through the front door: forwarded to the desk, streamed, never timed out.

The desk owns the feed (:mod:`vcs_desk.feed_api`); the intake authenticates the
caller and forwards with an internal token, as for every ``/v1/admin`` path,
but keeps the connection open as long as the operator watches (no read
timeout: an hour without an event is normal at night).

A browser's ``EventSource`` cannot send a bearer token, so this route also takes
the session cookie of a signed-in operator (the console's feed page). Only this
route, only ``GET``: it changes nothing, and another site cannot read its answer
(no CORS), so accepting the cookie here opens nothing the forms' CSRF protection
would have to close.

The desk ends each stream when the internal token it was opened with expires
(60 s); the browser reconnects at once with ``Last-Event-ID`` and loses nothing,
and the intake checks the caller again: a revoked token, or a session signed
out, stops the feed within a minute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from vcs_intake.gateway import STREAMING, GatewayDep
from vcs_intake.web.session import SESSION_COOKIE, accounts_of
from vcs_shared.auth import Principal
from vcs_shared.http_auth import BearerCredentials, authenticate, unauthorized

router = APIRouter()


async def watching_operator(request: Request, credentials: BearerCredentials) -> Principal:
    """The operator behind a bearer token or, without one, behind the session cookie."""
    if credentials is not None:
        principal = await authenticate(request, credentials)
    else:
        token = request.cookies.get(SESSION_COOKIE)
        who = await accounts_of(request).signed_in(token) if token else None
        if who is None:
            raise unauthorized(None)
        principal = who.principal
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs the operator role")
    return principal


@router.get("/v1/admin/feed", include_in_schema=False)
async def live_feed(
    request: Request,
    principal: Annotated[Principal, Depends(watching_operator)],
    gateway: GatewayDep,
) -> Response:
    return await gateway.forward(request, principal, "desk", timeouts=STREAMING)
