"""CSRF protection of every form: asgi-csrf's signed double-submit cookie.

Chosen because it is maintained middleware that guards every unsafe method on every
path at once (no per-route call to forget), signs its tokens, reads the token from
form bodies as well as from the ``x-csrftoken`` header, and leaves bearer-token API
calls alone. What we add here:

* the JSON API under ``/v1/`` is skipped: it authenticates by bearer token only, which
  a browser never sends on its own, so a forged cross-site post carries no credential;
* the sign-in, sign-out and invite forms are protected even without cookies (login CSRF);
* a body over the intake's limit read by the middleware is the same ``422`` as elsewhere;
* the refusal is a short page in Thai and English.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

from asgi_csrf import asgi_csrf  # type: ignore[import-untyped]
from starlette.types import ASGIApp, Receive, Scope, Send

from vcs_intake.resilience import BodyTooLarge

REFUSED = (
    "<!doctype html><html lang=th><meta charset=utf-8>"
    "<meta name=viewport content='width=device-width, initial-scale=1'>"
    "<title>403</title><body style='font-family:Sarabun,sans-serif;padding:1rem'>"
    "<h1>แบบฟอร์มหมดอายุ</h1><p>กรุณากลับไปหน้าก่อน โหลดหน้าใหม่ แล้วส่งอีกครั้ง</p>"
    "<p lang=en>This form has expired: go back, reload the page and send it again.</p>"
    "<p><a href='/'>หน้าแรก / Home</a></p></body></html>"
).encode()


class _ProtectedWithoutCookies:
    """The paths asgi-csrf checks even when the browser sends no cookie at all."""

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (
            path in ("/signin", "/signout") or path.startswith("/invite/")
        )

    def __iter__(self) -> Iterator[str]:
        return iter(())


def _bearer_api(scope: Scope) -> bool:
    path: str = scope["path"]
    return path.startswith("/v1/")


async def _refused(scope: Scope, send: Send, message_id: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": REFUSED})


def signing_secret(jwt_secret: str) -> str:
    """A key of its own, derived from the intake's signing secret (no new secret to manage)."""
    return hmac.new(jwt_secret.encode(), b"vcs-csrf-v1", hashlib.sha256).hexdigest()


class CsrfProtection:
    def __init__(self, app: ASGIApp, *, secret: str, secure: bool) -> None:
        self.unprotected = app
        self.app = asgi_csrf(
            app,
            signing_secret=secret,
            always_protect=_ProtectedWithoutCookies(),
            cookie_secure=secure,
            cookie_samesite="Lax",
            send_csrf_failed=_refused,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The JSON API bypasses asgi-csrf altogether: its own skip is checked only after it
        has signed a fresh token for the request, a cost on every submit for nothing."""
        try:
            if scope["type"] == "http" and _bearer_api(scope):
                await self.unprotected(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        except BodyTooLarge as exc:  # raised while the middleware itself read the form
            await send(
                {
                    "type": "http.response.start",
                    "status": exc.status_code,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"body too large"})
