"""Signing in through the department's OpenID Connect provider (single sign-on, or ThaID),
when one is configured (``VCS_OIDC_ISSUER``, ``VCS_OIDC_CLIENT_ID``, ``VCS_OIDC_CLIENT_SECRET``).

Authlib's Starlette client speaks the protocol: the provider's discovery document, the
authorization-code redirect with its ``state`` and ``nonce`` (kept in a short-lived signed
cookie of its own, ``vcs_sso``, by Starlette's SessionMiddleware; the person's session stays
the project's ``vcs_session``), the code exchange, and the ID token's checks (signature by
the provider's published keys, issuer, audience, expiry, nonce). What is ours: the provider
must say the e-mail is verified, the e-mail must name an existing account, and that account
keeps its own office or region (:meth:`~vcs_intake.people.accounts.Accounts.sign_in_verified`,
audited like every sign-in). Any refusal or provider failure returns to ``/signin`` with
the reason in the page's language; none is a server error.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from vcs_intake.web.account_pages import PagesDep, sign_in_page
from vcs_intake.web.i18n import N_
from vcs_intake.web.session import AccountsDep, local_path, start_session

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)

HANDSHAKE_COOKIE = "vcs_sso"
HANDSHAKE_SECONDS = 600
"""How long a person may take at the provider's page before the handshake expires."""

REFUSALS = {
    "unverified_email": N_(
        "The single sign-on service has not verified your e-mail address, so it cannot sign "
        "you in here. Verify it there, or sign in with your password."
    ),
    "unknown_email": N_(
        "No account here uses the e-mail address of your single sign-on. Ask the communication "
        "centre of your region to invite that address."
    ),
    "locked": N_("Too many wrong passwords: this account is locked for a while."),
    "denied": N_("Signing in through single sign-on was cancelled."),
    "failed": N_(
        "Single sign-on did not work this time. Try again, or sign in with your password."
    ),
}


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """Where people sign in, and who this service is there."""

    issuer: str
    client_id: str
    client_secret: str

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"


def install_single_sign_on(
    app: FastAPI, provider: OidcProvider, *, jwt_secret: str, https: bool
) -> None:
    """The two routes and the handshake cookie; only called when a provider is configured.

    Authlib is imported here, not with the module: only a deployment with single sign-on
    loads it, after logging is set up, so its deprecation warnings (Authlib 1.9 announces its
    httpx integration's move) reach the JSON log as records instead of raw lines on stderr."""
    from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]

    oauth = OAuth()
    oauth.register(
        "provider",
        server_metadata_url=provider.discovery_url,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        client_kwargs={"scope": "openid email profile"},
    )
    app.state.single_sign_on = oauth.provider
    app.include_router(router)
    app.add_middleware(
        SessionMiddleware,
        secret_key=hmac.new(jwt_secret.encode(), b"vcs-sso-v1", hashlib.sha256).hexdigest(),
        session_cookie=HANDSHAKE_COOKIE,
        max_age=HANDSHAKE_SECONDS,
        same_site="lax",  # the provider sends the person back with a top-level GET
        https_only=https,
    )


def provider_of(request: Request) -> Any:
    return request.app.state.single_sign_on


ProviderDep = Annotated[Any, Depends(provider_of)]


@router.get("/signin/oidc")
async def start_single_sign_on(
    request: Request, pages: PagesDep, provider: ProviderDep
) -> Response:
    """Sends the person to the provider, remembering where to go afterwards."""
    request.session["next"] = local_path(request.query_params.get("next"))
    callback = f"{request.app.state.public_url}/signin/oidc/callback"
    try:
        redirect: Response = await provider.authorize_redirect(request, callback)
    except Exception as exc:  # the provider's discovery document out of reach or unreadable
        log.warning("single_sign_on.unavailable", error=repr(exc))
        return _refused(request, pages, "failed")
    return redirect


@router.get("/signin/oidc/callback")
async def finish_single_sign_on(
    request: Request, pages: PagesDep, provider: ProviderDep, accounts: AccountsDep
) -> Response:
    """The provider's answer: a session for the account of the verified e-mail, or why not."""
    target = local_path(request.session.pop("next", None))
    try:
        token = await provider.authorize_access_token(request)
    except Exception as exc:  # denied, a forged or stale state, a token that fails its checks
        denied = getattr(exc, "error", None) == "access_denied"
        log.warning("single_sign_on.refused_by_provider", error=repr(exc))
        return _refused(request, pages, "denied" if denied else "failed")
    claims = token.get("userinfo") or {}
    client = request.client.host if request.client else None
    result = await accounts.sign_in_verified(
        str(claims.get("email") or ""),
        email_verified=claims.get("email_verified") is True,
        client=client,
    )
    if result.session_token is None:
        return _refused(request, pages, result.refusal or "failed")
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    start_session(response, request, result.session_token)
    return response


def _refused(request: Request, pages: PagesDep, reason: str) -> Response:
    error = pages.gettext(request)(REFUSALS[reason])
    return sign_in_page(request, pages, error=error, status_code=status.HTTP_401_UNAUTHORIZED)
