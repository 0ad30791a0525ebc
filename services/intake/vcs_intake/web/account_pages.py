"""Signing in and out, the invite page, and the language switch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import RedirectResponse, Response

from vcs_intake.people.accounts import InviteInvalid, PasswordRejected
from vcs_intake.web.i18n import LANGUAGE_COOKIE, LOCALES, N_
from vcs_intake.web.rendering import Pages
from vcs_intake.web.session import (
    SESSION_COOKIE,
    AccountsDep,
    MaybeSignedIn,
    end_session,
    local_path,
    start_session,
)

router = APIRouter(include_in_schema=False)

PASSWORD_PROBLEMS = {
    "differs": N_("The two passwords differ."),
    "too_short": N_("Use at least 10 characters."),
    "too_long": N_("Use at most 200 characters."),
    "is_email": N_("Do not use your e-mail address as the password."),
}


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


PagesDep = Annotated[Pages, Depends(pages_of)]


def sign_in_page(
    request: Request,
    pages: Pages,
    *,
    email: str = "",
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    target = local_path(request.query_params.get("next"))
    return pages.render(
        request,
        "signin.html",
        email=email,
        error=error,
        notice=notice,
        next=target,
        single_sign_on=getattr(request.app.state, "single_sign_on", None) is not None,
        status_code=status_code,
    )


@router.get("/signin")
async def sign_in_form(request: Request, pages: PagesDep, who: MaybeSignedIn) -> Response:
    if who is not None:
        return RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    _ = pages.gettext(request)
    notice = (
        _("Your password is set. Sign in with it.") if request.query_params.get("set") else None
    )
    return sign_in_page(request, pages, email=request.query_params.get("email", ""), notice=notice)


@router.post("/signin")
async def sign_in(request: Request, pages: PagesDep, accounts: AccountsDep) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    client = request.client.host if request.client else None
    result = await accounts.sign_in(email, password, client=client)
    if result.session_token is not None:
        response = RedirectResponse(local_path(str(form.get("next", ""))), status_code=303)
        start_session(response, request, result.session_token)
        return response
    if result.locked_until is not None:
        minutes = max(1, round((result.locked_until - datetime.now(UTC)).total_seconds() / 60))
        _ = pages.gettext(request)
        error = _("Too many wrong passwords: this account is locked for %(minutes)s minutes.") % {
            "minutes": minutes
        }
        return sign_in_page(
            request, pages, email=email, error=error, status_code=status.HTTP_429_TOO_MANY_REQUESTS
        )
    _ = pages.gettext(request)
    error = _("The e-mail address or the password is wrong.")
    return sign_in_page(
        request, pages, email=email, error=error, status_code=status.HTTP_401_UNAUTHORIZED
    )


@router.post("/signout")
async def sign_out(request: Request, accounts: AccountsDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await accounts.sign_out(token)
    response = RedirectResponse("/signin", status_code=303)
    end_session(response, request)
    return response


@router.get("/invite/{token}")
async def invite_form(
    token: str, request: Request, pages: PagesDep, accounts: AccountsDep
) -> Response:
    try:
        person = await accounts.invited(token)
    except InviteInvalid:
        return pages.render(request, "invite_invalid.html", status_code=404)
    return pages.render(request, "invite.html", person=person, error=None)


@router.post("/invite/{token}")
async def accept_invite(
    token: str, request: Request, pages: PagesDep, accounts: AccountsDep
) -> Response:
    form = await request.form()
    password = str(form.get("password", ""))
    confirmation = str(form.get("password_confirm", ""))
    try:
        person = await accounts.accept_invite(token, password, confirmation)
    except InviteInvalid:
        return pages.render(request, "invite_invalid.html", status_code=404)
    except PasswordRejected as exc:
        person = await accounts.invited(token)
        error = pages.gettext(request)(PASSWORD_PROBLEMS[exc.problem])
        return pages.render(request, "invite.html", person=person, error=error, status_code=422)
    return RedirectResponse(f"/signin?set=1&email={quote(person.email)}", status_code=303)


@router.get("/language")
async def choose_language(request: Request) -> Response:
    """``/language?to=en&next=/requests/new``: remembered in a cookie for a year."""
    chosen = request.query_params.get("to")
    response = RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    if chosen in LOCALES:
        response.set_cookie(
            LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax", httponly=True
        )
    return response
