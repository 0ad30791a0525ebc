"""Who is signed in: the session cookie, resolved to a person and their principal.

The cookie holds a random token (the store keeps only its SHA-256); it is
HttpOnly, SameSite=Lax, and Secure when the intake is reached over HTTPS
(``VCS_PUBLIC_URL`` starting with ``https``, or ``X-Forwarded-Proto`` from the
proxy in front). A page that needs a person sends everyone else to ``/signin``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from vcs_intake.people.accounts import Accounts, SignedIn
from vcs_intake.people.model import SESSION_LIFETIME
from vcs_shared.access_log import note_principal

SESSION_COOKIE = "vcs_session"


class SignInRequired(Exception):
    """Raised by :func:`signed_in`; the app answers with a redirect to the sign-in page."""

    def __init__(self, path: str) -> None:
        self.path = path


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


AccountsDep = Annotated[Accounts, Depends(accounts_of)]


async def maybe_signed_in(request: Request, accounts: AccountsDep) -> SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE)
    who = await accounts.signed_in(token) if token else None
    if who is not None:
        note_principal(request.state, who.principal.subject)
    return who


async def signed_in(
    request: Request, who: Annotated[SignedIn | None, Depends(maybe_signed_in)]
) -> SignedIn:
    if who is None:
        raise SignInRequired(request.url.path)
    return who


MaybeSignedIn = Annotated[SignedIn | None, Depends(maybe_signed_in)]
Person = Annotated[SignedIn, Depends(signed_in)]


def to_sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"/signin?next={quote(exc.path)}", status_code=303)


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or bool(request.app.state.https)


def start_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=secure_cookies(request), path="/"
    )


def local_path(target: str | None, default: str = "/") -> str:
    """Only a path on this site may be a redirect target (no ``//evil.example``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
