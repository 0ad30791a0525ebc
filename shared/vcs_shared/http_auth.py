"""FastAPI dependencies over :mod:`vcs_shared.auth`: a bearer token in, a :class:`Principal` out.

Shared because the intake and the allocator's admin API guard their routes the
same way. An app opts in at its composition root by setting
``app.state.authenticator`` to an :class:`~vcs_shared.auth.Authenticator`;
then a route takes ``principal: CurrentPrincipal``, and a whole router is
closed to everyone but operators with
``APIRouter(dependencies=[Depends(require_operator)])``.

Using :data:`bearer_scheme` is also what declares the ``bearer`` security
scheme in the app's OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vcs_shared.auth import Authenticator, InvalidToken, Principal

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description=(
        "A DOPA VCS token for an office or an operator, issued with "
        "`vcs token issue --office 4701` or `vcs token issue --operator NAME --region 12`."
    ),
)

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def unauthorized(reason: str | None) -> HTTPException:
    """401 with the RFC 6750 challenge; the reason says what is wrong, never who exists."""
    challenge = "Bearer"
    if reason is not None:
        description = reason.replace('"', "'")
        challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=reason or "a bearer token is required",
        headers={"WWW-Authenticate": challenge},
    )


async def authenticate(request: Request, credentials: BearerCredentials) -> Principal:
    """The caller, or 401: no token, a bad, tampered, expired or revoked one."""
    if credentials is None:
        raise unauthorized(None)
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = await authenticator.authenticate(credentials.credentials)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc
    structlog.contextvars.bind_contextvars(principal=principal.subject)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def require_operator(principal: CurrentPrincipal) -> Principal:
    """The caller if an operator; 403 for an office (it is known, just not allowed)."""
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs the operator role")
    return principal
