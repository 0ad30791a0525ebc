"""FastAPI dependencies over :mod:`vcs_shared.auth`: a bearer token in, a :class:`Principal` out.

Shared because the intake and every internal API guard their routes the same
way. An app opts in at its composition root by setting
``app.state.authenticator`` to an :class:`~vcs_shared.auth.Authenticator` (the
intake: a :class:`~vcs_shared.auth.TokenAuthenticator`; an internal API: an
:class:`~vcs_shared.auth.InternalAuthenticator`); then a route takes
``principal: CurrentPrincipal``, and a whole router is closed to everyone but
operators with ``operator_router(prefix, tags=[...])``, which also documents their 401 and 403.

Admin routes take ``scope: OperatorScope`` (:class:`~vcs_shared.scope.Scope`)
and answer with :func:`outside_scope` (a write naming anything outside, ``403``)
or :func:`not_in_scope` (a single object outside, ``404`` as if it did not exist).

Using :data:`bearer_scheme` is also what declares the ``bearer`` security
scheme in the app's OpenAPI document.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vcs_shared.access_log import note_principal
from vcs_shared.auth import Authenticator, InvalidToken, Principal
from vcs_shared.scope import Scope

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description=(
        "A DOPA VCS token for an office or an operator, issued with "
        "`vcs token issue --office 4701`, `vcs token issue --operator NAME --region 12` "
        "or `--national`."
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
    note_principal(request.state, principal.subject)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def require_operator(principal: CurrentPrincipal) -> Principal:
    """The caller if an operator; 403 for an office (it is known, just not allowed)."""
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs the operator role")
    return principal


OperatorPrincipal = Annotated[Principal, Depends(require_operator)]


def operator_router(
    prefix: str, *, tags: list[str | Enum], responses: dict[int | str, dict[str, Any]] | None = None
) -> APIRouter:
    """An internal API's router closed to all but operators, with the answers every such
    route shares documented once (``responses`` adds a router's own)."""
    return APIRouter(
        prefix=prefix,
        tags=tags,
        dependencies=[Depends(require_operator)],
        responses={
            401: {"description": "Not an internal token minted by the intake"},
            403: {"description": "The token is not an operator's"},
            **(responses or {}),
        },
    )


async def operator_scope(principal: OperatorPrincipal) -> Scope:
    """Where the calling operator may act; offices get 403 like every admin route."""
    return Scope.of(principal)


OperatorScope = Annotated[Scope, Depends(operator_scope)]


def outside_scope(what: str, outside: list[str], scope: Scope) -> HTTPException:
    """403 for a write or a filter naming ``outside``; nothing of the call was done."""
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail=f"{what} outside your provinces ({scope.describe()}): {', '.join(outside)}",
    )


def not_in_scope(what: str) -> HTTPException:
    """404 for a single object outside the caller's provinces, the same as a missing one."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no such {what}")


async def province_filter(
    scope: OperatorScope,
    province: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{2}$", description="Only this province (one of yours), e.g. 47"),
    ] = None,
) -> str | None:
    """A list's ``?province=`` filter: one of the caller's provinces, or 403 naming it."""
    if province is not None and not scope.covers_province(province):
        raise outside_scope("the province asked for is", [province], scope)
    return province


ProvinceFilter = Annotated[str | None, Depends(province_filter)]
