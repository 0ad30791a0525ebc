"""Every HTTP request logged once, with the id that ties its other log lines together.

A pure ASGI middleware, the outermost of every app (the intake and each internal
API), because it must see what every other layer did: the status a route or an
exception handler answered, the time the whole request took, and who the caller
turned out to be. ``http_request_id`` (the caller's ``X-Request-ID`` or a new
one) is bound for every log line written while the request runs and echoed in
the answer; the intake's gateway passes it on, so the owner's lines carry it too.

The caller's identity is read from ``scope["state"]["principal"]``, which the
authentication dependencies set (a token's subject, ``person:<id>`` for a
session). The state dictionary is shared by every layer of one request, even
those that run the app in a task of their own, where a context variable set
inside would not come back out. Only the path is logged: a query string may
carry what does not belong in a log.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("vcs.http")

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID = 200


def note_principal(state: Any, subject: str) -> None:
    """Records who the caller is for the request's log line (``request.state``)."""
    state.principal = subject


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER)
        request_id = given if given and len(given) <= MAX_REQUEST_ID else str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["http_request_id"] = request_id
        status = 500  # what the server answers when the app fails before starting a response
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(http_request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.log(
                    40 if status >= 500 else 20,
                    "http.request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    principal=state.get("principal"),
                )


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope["headers"]:
        if key == wanted:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
