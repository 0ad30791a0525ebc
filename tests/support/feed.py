"""An operator watching the live feed (``GET /v1/admin/feed``) over HTTP, as a browser would.

:func:`watching` opens the stream (httpx-sse parses it) and collects every
server-sent event with the moment it arrived; once it returns, the desk's reader
is attached to the stream (the desk attaches before answering), so whatever is
published afterwards must arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse

from tests.support.waiting import eventually


@dataclass(frozen=True)
class Received:
    event: str
    id: str
    data: str
    at: float
    """``time.monotonic()`` when it arrived."""

    @property
    def cloudevent(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


@dataclass
class Watcher:
    source: EventSource
    received: list[Received] = field(default_factory=list)
    ended: bool = False

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.received if r.id]

    async def wait_for(self, count: int, *, within: float = 30.0) -> list[Received]:
        """Waits until ``count`` events with an id have arrived; returns them all."""

        async def enough() -> bool:
            return len(self.ids) >= count

        await eventually(enough, timeout=within, what=f"{count} feed events")
        return [r for r in self.received if r.id]

    async def wait_for_id(self, event_id: str, *, within: float = 30.0) -> Received:
        async def found() -> Received | None:
            return next((r for r in self.received if r.id == event_id), None)

        return await eventually(found, timeout=within, what=f"feed event {event_id}")

    async def _collect(self) -> None:
        try:
            async for sse in self.source.aiter_sse():
                self._keep(sse)
        except httpx.HTTPError:
            pass
        finally:
            self.ended = True

    def _keep(self, sse: ServerSentEvent) -> None:
        if not sse.data:  # the opening ``retry:`` hint
            return
        self.received.append(Received(sse.event, sse.id, sse.data, time.monotonic()))


@contextlib.asynccontextmanager
async def watching(
    client: httpx.AsyncClient,
    *,
    headers: dict[str, str] | None = None,
    last_event_id: str | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[Watcher]:
    """Watches the feed until the block ends; the answer's status must be 200."""
    sent = dict(headers or {})
    if last_event_id is not None:
        sent["Last-Event-ID"] = last_event_id
    timeout = httpx.Timeout(30.0, read=None)
    async with aconnect_sse(
        client, "GET", "/v1/admin/feed", headers=sent, params=params, timeout=timeout
    ) as source:
        assert source.response.status_code == 200, await source.response.aread()
        assert source.response.headers["content-type"].startswith("text/event-stream")
        watcher = Watcher(source)
        task = asyncio.create_task(watcher._collect())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
