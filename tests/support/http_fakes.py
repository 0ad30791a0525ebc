"""The outside world's HTTP ends as real local servers: an office's webhook receiver and the
LINE Messaging API's push endpoint.

Each is a threaded ``http.server`` on 127.0.0.1 that records what it received and can be
taken down and brought back up on the same port (a receiver that is away for a while).
Tests wait for what arrives with :meth:`RecordingServer.wait_for`, never with sleeps.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True, slots=True)
class Received:
    """One request as it arrived: method, path, headers (lower-case names), raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LocalServer:
    """A threaded ``http.server`` on 127.0.0.1 that can be taken down and brought back up on
    the same port; subclasses give it their request handler in ``start``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: ThreadingHTTPServer | None = None

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: the port refuses connections until ``start`` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class RecordingServer(LocalServer):
    """Records every POST; answers what :meth:`answer` says (200 by default)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.received: list[Received] = []
        self.statuses: list[int] = []
        """The status each of :attr:`received` was answered with, in the same order."""
        self.status = 200
        self._changed = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        return self.status, {}

    def start(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                request = Received(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                status, body = owner.answer(request)
                with owner._changed:
                    owner.received.append(request)
                    owner.statuses.append(status)
                    owner._changed.notify_all()
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.serve(Handler)
        return self

    def count(self) -> int:
        with self._changed:
            return len(self.received)

    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx status (what a sender counts as delivered)."""
        with self._changed:
            return [r for r, s in zip(self.received, self.statuses, strict=True) if s < 300]

    async def wait_for(self, count: int, *, timeout: float = 30.0) -> list[Received]:
        """Waits until at least ``count`` requests arrived; fails the test after ``timeout``."""

        def wait() -> list[Received]:
            with self._changed:
                if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                    raise AssertionError(
                        f"{type(self).__name__}: {len(self.received)} of {count} requests "
                        f"arrived within {timeout}s"
                    )
                return list(self.received)

        return await asyncio.to_thread(wait)


class WebhookReceiver(RecordingServer):
    """An office's receiver: verifies each message with the ``standardwebhooks`` package
    against the secrets it knows (:attr:`secrets`) and keeps the verified payloads."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.secrets: list[str] = []

    def verified(self, request: Received, secret: str) -> Any:
        """The payload if ``secret`` verifies it; WebhookVerificationError otherwise."""
        return Webhook(secret).verify(request.body, request.headers)

    def verifies(self, request: Received, secret: str) -> bool:
        try:
            self.verified(request, secret)
        except WebhookVerificationError:
            return False
        return True


class FakeLine(RecordingServer):
    """LINE's ``POST /v2/bot/message/push``: checks the Bearer channel access token and the
    body's shape as LINE does (400 with a message otherwise), keeps each accepted push, and
    answers a retry key it accepted before with 409 like LINE."""

    PATH = "/v2/bot/message/push"

    def __init__(self, token: str, port: int = 0) -> None:
        super().__init__(port)
        self.token = token
        self.accepted: list[dict[str, Any]] = []
        self._retry_keys: set[str] = set()

    def answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        if request.path != self.PATH:
            return 404, {"message": "Not found"}
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {
                "message": "Authentication failed. Confirm that the access token in "
                "the authorization header is valid."
            }
        try:
            body = request.json()
            to, messages = body["to"], body["messages"]
        except (ValueError, KeyError, TypeError):
            return 400, {"message": "The request body has 1 error(s)"}
        if not isinstance(to, str) or not isinstance(messages, list) or not 1 <= len(messages) <= 5:
            return 400, {"message": "The request body has 1 error(s)"}
        if self.status != 200:
            return self.status, {"message": "fake LINE told to fail"}
        key = request.headers.get("x-line-retry-key")
        if key is not None:
            if key in self._retry_keys:
                return 409, {"message": "The retry key is already accepted"}
            self._retry_keys.add(key)
        self.accepted.append(body)
        return 200, {"sentMessages": [{"id": str(len(self.accepted)), "quoteToken": "q"}]}
