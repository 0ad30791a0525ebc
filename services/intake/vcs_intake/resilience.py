"""How the intake answers what is not the caller's fault and what is too big to read.

* :class:`BodySizeLimit` refuses a body over the limit with a ``422`` naming
  the body, before it is stored or even fully read: at once when
  ``Content-Length`` says so, and while reading when the body comes chunked
  without a length. A few paths (a whole pool file) have a larger limit of their own.
* :func:`store_unavailable` turns a store outage into ``503`` with
  ``Retry-After`` instead of a ``500``. It does not claim that nothing was stored: a
  timeout after the insert reached the store may leave the request stored and on its way.
  The outcome is unknown, so the client retries with its ``Idempotency-Key`` and gets the
  first request if there was one (a client that sent none may get two).
* :class:`AdmissionLimit` bounds the submits handled at once. Beyond the bound a submit is
  answered ``503`` with ``Retry-After`` at once, before its token is checked or anything is
  stored: the outcome is known (nothing stored), and the intake's answers stay quick when
  more arrive than the store can take, instead of every caller waiting minutes, timing out
  and retrying into an ever longer queue (seen in a chaos soak: answers of 38-150 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vcs_shared.metrics import SUBMITS_SHED

log = structlog.get_logger(__name__)


def _too_large(max_body_bytes: int) -> list[dict[str, Any]]:
    return [
        {
            "loc": ["body"],
            "msg": f"body larger than {max_body_bytes} bytes",
            "type": "body_too_large",
        }
    ]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while reading; FastAPI passes HTTP exceptions on untouched."""

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=_too_large(max_body_bytes))


class BodySizeLimit:
    """Pure ASGI middleware: counts the bytes actually received, not only the declared length."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_body_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse(
                {"detail": _too_large(limit)},
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 for a store that did not answer; what the call did is unknown."""
    log.warning("store.unavailable", path=request.url.path, error=repr(exc))
    return JSONResponse(
        {
            "detail": (
                "the request store did not answer, so the outcome is unknown: the request may "
                "or may not have been stored. Retry with the same Idempotency-Key: if it was "
                "stored you get it back (200), otherwise it is stored now (202)"
            ),
            "outcome": "unknown",
        },
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


class AdmissionLimit:
    """Pure ASGI middleware: at most ``limit`` calls of ``method`` ``path`` under way at once.

    A count, not a queue: one more is refused at once rather than kept waiting, so the
    caller's backoff (``Retry-After``) spreads the load instead of the intake holding it.
    """

    def __init__(
        self, app: ASGIApp, *, limit: int, method: str, path: str, retry_after: int = 2
    ) -> None:
        self.app = app
        self.limit = limit
        self.method = method
        self.path = path
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == self.method
            and scope["path"] == self.path
        ):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            SUBMITS_SHED.inc()
            busy = JSONResponse(
                {
                    "detail": (
                        f"the intake is busy: {self.limit} submits are being handled. Nothing "
                        f"was stored; retry after {self.retry_after} s with the same "
                        "Idempotency-Key"
                    ),
                    "outcome": "not_stored",
                },
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(self.retry_after)},
            )
            await busy(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
