"""The offices of the soak: submit and cancel over the public HTTP API, as careful clients do.

Every submit carries an ``Idempotency-Key`` and is retried with the same key
while the answer is unknown (no connection, a timeout, a 5xx), so a retry can
never make a second booking; the answer that finally comes decides whether the
request was accepted. Windows are drawn from a small set of days and hours, so
offices of one province contend for the same rooms. Some accepted requests are
cancelled a few seconds later, also retried until answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from vcs_shared.offices import Office
from vcs_shared.thaitime import BANGKOK

log = structlog.get_logger(__name__)

HOURS = (9, 10, 13, 14, 15)
DAYS = 20  # windows fall on the next 20 days, from the day after tomorrow
CANCEL_SHARE = 0.15
ANSWER_WITHIN = 300.0  # a client gives up retrying one call after this long
CALL_TIMEOUT = 30.0  # one attempt


@dataclass
class Ledger:
    """What the clients know at the end: accepted requests, refusals, cancels confirmed."""

    accepted: dict[str, str] = field(default_factory=dict)  # request id -> district code
    refused: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    unanswered: int = 0  # gave up retrying: outcome unknown to the client
    cancelled: set[str] = field(default_factory=set)
    retries: int = 0

    def refuse(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


@dataclass(frozen=True, slots=True)
class Caller:
    """An office and its bearer token."""

    office: Office
    token: str


def window(rng: random.Random, today: datetime) -> tuple[datetime, datetime]:
    day = today + timedelta(days=2 + rng.randrange(DAYS))
    start = day.replace(hour=rng.choice(HOURS), minute=0, second=0, microsecond=0)
    return start, start + timedelta(hours=rng.choice((1, 2)))


def body(office: Office, rng: random.Random, today: datetime) -> dict[str, Any]:
    starts_at, ends_at = window(rng, today)
    return {
        "district_code": office.district_code,
        "title": f"ประชุมทดสอบความทนทาน {rng.randrange(1000)}",
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "participants": rng.choice((20, 80, 250, 300, 450, 900)),
        "urgency": rng.choice(("normal", "urgent", "very_urgent", "most_urgent")),
        "needs_support": False,
        "contact": {"name": "ผู้ทดสอบ", "email": "soak@example.go.th", "phone": "042-000000"},
    }


class Clients:
    """Drives ``rate`` submits a second until stopped; what happened goes in :attr:`ledger`."""

    def __init__(
        self,
        intake_url: str,
        offices: Sequence[Caller],
        *,
        rate: float,
        seed: int,
    ) -> None:
        self._intake_url = intake_url
        self._offices = offices
        self._rate = rate
        self._rng = random.Random(seed)
        # One TLS context for every call's client: making one loads the system's CA bundle,
        # which at the soak's rate and retries cost the driver a whole core of the machine
        # under test (seen in a 30-minute soak: the driver at 94 % CPU).
        self._tls = ssl.create_default_context()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ledger = Ledger()

    async def run(self, until: asyncio.Event) -> None:
        """Starts one submit every 1/rate seconds until ``until`` is set; then waits for the
        calls in flight (each retries until answered or :data:`ANSWER_WITHIN`)."""
        today = datetime.now(BANGKOK)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not until.is_set():
            chosen = self._rng.choice(self._offices)
            cancel = self._rng.random() < CANCEL_SHARE
            payload = body(chosen.office, self._rng, today)
            self._spawn(self._submit(chosen, payload, cancel_after=cancel))
            next_at += 1 / self._rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), timeout=max(next_at - loop.time(), 0))
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _submit(self, chosen: Caller, payload: dict[str, Any], *, cancel_after: bool) -> None:
        key = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {chosen.token}", "Idempotency-Key": key}
        answer = await self._until_answered("POST", "/v1/requests", headers, payload)
        if answer is None:
            self.ledger.unanswered += 1
            return
        if answer.status_code not in (200, 202):
            self.ledger.refuse(answer.status_code)
            return
        request_id = str(answer.json()["request_id"])
        self.ledger.accepted[request_id] = chosen.office.district_code
        if cancel_after:
            await asyncio.sleep(self._rng.uniform(0.5, 8.0))  # an office changing its mind
            await self._cancel(chosen, request_id)

    async def _cancel(self, chosen: Caller, request_id: str) -> None:
        headers = {"Authorization": f"Bearer {chosen.token}"}
        path = f"/v1/requests/{request_id}/cancel"
        answer = await self._until_answered("POST", path, headers, None)
        if answer is not None and answer.status_code == 200:
            self.ledger.cancelled.add(request_id)

    async def _call(
        self, method: str, path: str, headers: dict[str, str], payload: dict[str, Any] | None
    ) -> httpx.Response:
        """One attempt on a connection of its own: an office's client has no pool to share, and
        a shared pool whose connections were cut by a killed intake can run dry (seen in a
        soak: every later call timed out waiting for a connection)."""
        async with httpx.AsyncClient(
            base_url=self._intake_url, timeout=CALL_TIMEOUT, verify=self._tls
        ) as http:
            return await http.request(method, path, headers=headers, json=payload)

    async def _until_answered(
        self, method: str, path: str, headers: dict[str, str], payload: dict[str, Any] | None
    ) -> httpx.Response | None:
        """The first definite answer (2xx or 4xx); retries the unknown ones with backoff."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + ANSWER_WITHIN
        delay = 0.2
        while True:
            wait = delay
            try:
                answer = await self._call(method, path, headers, payload)
                if answer.status_code < 500:
                    return answer
                reason = f"HTTP {answer.status_code}"
                wait = max(delay, retry_after(answer))
            except httpx.HTTPError as exc:
                reason = repr(exc)
            if loop.time() > give_up_at:
                log.warning("chaos.client_gave_up", path=path, reason=reason)
                return None
            self.ledger.retries += 1
            await asyncio.sleep(wait)
            delay = min(delay * 2, 5.0)


def retry_after(answer: httpx.Response) -> float:
    """The seconds a 503's ``Retry-After`` asks for (0 without one, or in the date form)."""
    value = answer.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else 0.0
