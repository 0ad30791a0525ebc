"""Wakes the request pages' live streams when their request changes in this process.

The projection's handlers (``room.assigned``, ``credentials.delivered`` ...) and the
pages' own cancel call :meth:`StatusHub.changed`; a stream waiting on that request
re-reads it at once. A stream also re-reads after a short while on its own, so a
change handled by another intake process (several behind one address) still shows,
only a little later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

from vcs_shared.events import Event


class Watch:
    """One page's interest in one request: set when it changes."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def wake(self) -> None:
        self._changed.set()

    async def next_change(self, *, within: float) -> None:
        """Returns when the request changed since the last call, or after ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()
        self._changed.clear()


class StatusHub:
    def __init__(self) -> None:
        self._watches: defaultdict[str, set[Watch]] = defaultdict(set)

    def changed(self, request_id: str) -> None:
        for watch in self._watches.get(request_id, ()):
            watch.wake()

    @contextlib.asynccontextmanager
    async def watch(self, request_id: str) -> AsyncIterator[Watch]:
        """Registered before the stream's first read, so no change falls in between."""
        watch = Watch()
        self._watches[request_id].add(watch)
        try:
            yield watch
        finally:
            self._watches[request_id].discard(watch)
            if not self._watches[request_id]:
                del self._watches[request_id]

    def saw(self, event: Event) -> None:
        """For :meth:`vcs_shared.dispatch.Handlers.observed`: an event about a request was
        handled (stored), so pages showing that request look again."""
        self.changed(event.request_id)
