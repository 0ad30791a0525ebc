"""Wires the people's side into the intake's app (called by its composition root)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from vcs_intake.web import account_pages, console_pages, free_rooms, pages, support_pages
from vcs_intake.web.assets import mount_assets
from vcs_intake.web.csrf import CsrfProtection, signing_secret
from vcs_intake.web.session import SignInRequired, to_sign_in
from vcs_intake.web.single_sign_on import OidcProvider, install_single_sign_on


def install_web(
    app: FastAPI,
    *,
    jwt_secret: str,
    public_url: str,
    node_modules: Path | None,
    single_sign_on: OidcProvider | None = None,
) -> None:
    """Routes, assets, the sign-in redirect and CSRF protection. Call before adding the
    body-size limit, so that limit wraps the CSRF middleware (which may read a form)."""
    https = public_url.startswith("https://")
    app.state.https = https
    app.state.public_url = public_url
    app.include_router(account_pages.router)
    app.include_router(free_rooms.router)
    app.include_router(pages.router)
    app.include_router(console_pages.router)
    app.include_router(support_pages.router)
    mount_assets(app, node_modules)
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.add_exception_handler(pages.PageNotFound, pages.not_found_page)
    app.add_exception_handler(console_pages.OperatorsOnly, console_pages.operators_only_page)
    if single_sign_on is not None:
        install_single_sign_on(app, single_sign_on, jwt_secret=jwt_secret, https=https)
    app.add_middleware(
        CsrfProtection,
        secret=signing_secret(jwt_secret),
        secure=https,
    )
