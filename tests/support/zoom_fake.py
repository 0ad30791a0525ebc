"""A fake Zoom API as a real local HTTP server: server-to-server OAuth and meeting updates.

It speaks the endpoints the allocator uses, as Zoom documents them:
``POST /oauth/token?grant_type=account_credentials&account_id=…`` with HTTP Basic auth answers
``{"access_token", "token_type": "bearer", "expires_in": 3599}``; ``PATCH /v2/meetings/{id}``
with ``Authorization: Bearer <token>`` and ``{"password": …}`` answers ``204``. A wrong Basic
auth or account id gets ``401``/``400``, an unknown bearer ``401``. :attr:`rate_limit_next`
makes the next PATCHes answer ``429`` with ``Retry-After``; :meth:`stop` takes it down (the
port refuses connections). Tests wait with :meth:`wait_for_patches`, never sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.support.http_fakes import LocalServer

ACCOUNT_ID = "acc-1"
CLIENT_ID = "client-1"
CLIENT_SECRET = "zoom-client-secret"
"""The test account's server-to-server OAuth app, which the ``zoom`` fixture's server knows."""


@dataclass(frozen=True, slots=True)
class Patched:
    """One accepted PATCH: which meeting got which passcode."""

    meeting_id: str
    password: str


class FakeZoom(LocalServer):
    def __init__(
        self,
        *,
        account_id: str = ACCOUNT_ID,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
    ) -> None:
        self.account_id = account_id
        self.client_id = client_id
        self.client_secret = client_secret
        super().__init__()
        self.tokens_issued: list[str] = []
        self.patches: list[Patched] = []
        self.rate_limited: int = 0
        self.rate_limit_next = 0
        self.retry_after = "1"
        self._changed = threading.Condition()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    @property
    def oauth_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth/token"

    def _token(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        query = parse_qs(urlsplit(path).query)
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return 401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
        if query.get("grant_type") != ["account_credentials"] or query.get("account_id") != [
            self.account_id
        ]:
            return 400, {"reason": "Invalid account_id", "error": "invalid_request"}
        token = secrets.token_urlsafe(24)
        with self._changed:
            self.tokens_issued.append(token)
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 3599,
            "scope": "meeting:update:meeting:admin",
        }

    def _patch(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = urlsplit(path).path.split("/")
        if len(parts) != 4 or parts[1:3] != ["v2", "meetings"]:
            return 404, {"code": 404, "message": "Not found"}
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        with self._changed:
            if bearer not in self.tokens_issued:
                return 401, {"code": 124, "message": "Invalid access token."}
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                self.rate_limited += 1
                self._changed.notify_all()
                return 429, {"code": 429, "message": "You have exceeded the daily rate limit"}
            password = json.loads(body)["password"]
            self.patches.append(Patched(parts[3], password))
            self._changed.notify_all()
        return 204, None

    def start(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any, extra: dict[str, str]) -> None:
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                if payload:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _read(self) -> tuple[dict[str, str], bytes]:
                length = int(self.headers.get("content-length", "0"))
                return {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)

            def do_POST(self) -> None:
                headers, _ = self._read()
                if urlsplit(self.path).path != "/oauth/token":
                    self._answer(404, {"reason": "not found"}, {})
                    return
                status, body = owner._token(self.path, headers)
                self._answer(status, body, {})

            def do_PATCH(self) -> None:
                headers, body = self._read()
                status, answer = owner._patch(self.path, headers, body)
                extra = {"Retry-After": owner.retry_after} if status == 429 else {}
                self._answer(status, answer, extra)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.serve(Handler)
        return self

    def passcodes_of(self, meeting_id: str) -> list[str]:
        with self._changed:
            return [p.password for p in self.patches if p.meeting_id == meeting_id]

    async def wait_for_patches(self, count: int, *, timeout: float = 30.0) -> list[Patched]:
        """Waits until at least ``count`` PATCHes were accepted; fails after ``timeout``."""

        def wait() -> list[Patched]:
            with self._changed:
                if not self._changed.wait_for(lambda: len(self.patches) >= count, timeout):
                    raise AssertionError(
                        f"fake Zoom: {len(self.patches)} of {count} PATCHes within {timeout}s"
                    )
                return list(self.patches)

        return await asyncio.to_thread(wait)
