"""Setting a fresh passcode on a room's Zoom Meeting ID, through Zoom's REST API.

Why: a pool's passcode never changes, so an office that once received it could join every
later meeting in the same room. With ``VCS_ZOOM_*`` credentials set, each booking gets a
passcode of its own, set on the meeting just before its window (see issue 15).

Zoom's server-to-server OAuth: ``POST {oauth_url}?grant_type=account_credentials&account_id=…``
with HTTP Basic auth (client id, client secret) answers a bearer token valid for an hour
(``expires_in``); the token is cached until shortly before it expires, so bookings do not
each cost a token request. The passcode is set with ``PATCH {api_url}/meetings/{meetingId}``
``{"password": …}``, which Zoom answers ``204``. Zoom limits meeting updates per host and day
(about 100) and answers ``429`` with ``Retry-After`` when a rate limit is hit: the client
waits what Zoom asks (capped) and tries again a few times. Anything else that is not a
success (a refused token, a 5xx, a connection refused, a timeout) is :class:`ZoomUnavailable`,
which the caller turns into the configured fallback.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
import structlog

log = structlog.get_logger(__name__)

PASSCODE_DIGITS = 8
"""Zoom passcodes are at most 10 characters; digits only are accepted by every account's
passcode policy that allows numeric passcodes and are easy to type on a phone's dial pad."""

TOKEN_MARGIN_SECONDS = 60.0
"""A cached token is renewed this long before Zoom says it expires, so a request never
carries a token that expires on the way."""


class ZoomUnavailable(RuntimeError):
    """Zoom could not set the passcode (down, refusing, or still rate-limited after retries)."""


class MeetingPasscodes(Protocol):
    """The boundary to Zoom: set a meeting's passcode, or raise :class:`ZoomUnavailable`."""

    async def set_passcode(self, meeting_id: str, passcode: str) -> None: ...

    async def check(self) -> None:
        """Raises :class:`ZoomUnavailable` unless Zoom answers (a token is at hand)."""


def new_passcode() -> str:
    """A fresh random numeric passcode for one booking (``secrets``, not ``random``)."""
    return "".join(secrets.choice("0123456789") for _ in range(PASSCODE_DIGITS))


@dataclass(frozen=True, slots=True)
class ZoomAccount:
    """A server-to-server OAuth app's credentials and where Zoom's endpoints are."""

    account_id: str
    client_id: str
    client_secret: str
    api_url: str = "https://api.zoom.us/v2"
    oauth_url: str = "https://zoom.us/oauth/token"


class ZoomClient:
    """:class:`MeetingPasscodes` over httpx, with the hour-long token cached."""

    def __init__(
        self,
        account: ZoomAccount,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        max_retry_after: float = 60.0,
    ) -> None:
        self._account = account
        self._http = httpx.AsyncClient(timeout=timeout)
        self._max_attempts = max_attempts
        self._max_retry_after = max_retry_after
        self._token: str | None = None
        self._token_until = 0.0
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check(self) -> None:
        await self._bearer()

    async def set_passcode(self, meeting_id: str, passcode: str) -> None:
        url = f"{self._account.api_url.rstrip('/')}/meetings/{meeting_id}"
        for attempt in range(1, self._max_attempts + 1):
            token = await self._bearer()
            try:
                response = await self._http.patch(
                    url,
                    json={"password": passcode},
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as error:
                raise ZoomUnavailable(f"PATCH meeting {meeting_id}: {error!r}") from error
            if response.status_code in (200, 204):
                return
            if response.status_code == 401 and attempt < self._max_attempts:
                # A token revoked or expired early: fetch a new one and try again.
                self._token = None
                continue
            if response.status_code == 429 and attempt < self._max_attempts:
                wait = self._retry_after(response, attempt)
                log.warning("zoom.rate_limited", meeting_id=meeting_id, retry_after=wait)
                await asyncio.sleep(wait)
                continue
            raise ZoomUnavailable(
                f"PATCH meeting {meeting_id}: HTTP {response.status_code} {response.text[:200]}"
            )
        raise ZoomUnavailable(f"PATCH meeting {meeting_id}: gave up after {attempt} attempts")

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        """Zoom's ``Retry-After`` (seconds) if it gives one, else exponential backoff; capped."""
        header = response.headers.get("retry-after", "")
        try:
            wait = float(header)
        except ValueError:
            wait = float(2**attempt)
        return max(0.0, min(wait, self._max_retry_after))

    async def _bearer(self) -> str:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_until:
                return self._token
            account = self._account
            try:
                response = await self._http.post(
                    account.oauth_url,
                    params={"grant_type": "account_credentials", "account_id": account.account_id},
                    auth=(account.client_id, account.client_secret),
                )
            except httpx.HTTPError as error:
                raise ZoomUnavailable(f"token: {error!r}") from error
            if response.status_code != 200:
                raise ZoomUnavailable(f"token: HTTP {response.status_code}")
            try:
                body = response.json()
                token = str(body["access_token"])
                expires_in = float(body.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError) as error:
                raise ZoomUnavailable(f"token: unreadable answer: {error!r}") from error
            self._token = token
            self._token_until = time.monotonic() + max(0.0, expires_in - TOKEN_MARGIN_SECONDS)
            return token
