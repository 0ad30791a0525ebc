"""Restarts a service whose store client stays broken while the store itself answers.

Seen in every long chaos soak (PyMongo 4.20's ``AsyncMongoClient`` on nx-27017; six times in
one 30-minute run): after the store was frozen and thawed, a service's client answered every
operation with ``connection pool paused``, a server-selection timeout or ``RuntimeError: Lock
is not acquired`` (its topology lock) for good — 13 minutes and more — while the store served
the other services, and a new client, at once. PyMongo's monitor, which alone marks the
server usable again, runs as a periodic task that stops for good when an error escapes its
check, and nothing restarts it. Every store of the service holds that client, so it
cannot be mended in place: the watchdog stops the service (its own graceful SIGTERM), and
the supervisor of ``make run``, or the container's restart policy, starts it afresh.

A store that is really down is not a reason: a fresh client must answer before anything is
stopped, and only after the service's own client failed for :data:`PATIENCE` seconds.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import structlog
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from vcs_shared.store import Document

log = structlog.get_logger(__name__)

PATIENCE = 60.0
"""Seconds of failing pings before a fresh client is asked: longer than a client takes to
recover from an ordinary outage (one heartbeat, 10 s, after the store is back)."""


def stop_this_process() -> None:
    """The service's own graceful stop, as the supervisor would ask for it."""
    os.kill(os.getpid(), signal.SIGTERM)


class StoreWatchdog:
    """Told the outcome of each of the service's own store pings; stops the service once they
    have failed for ``patience`` seconds while a fresh client reaches the store."""

    def __init__(
        self,
        store_url: str,
        *,
        patience: float = PATIENCE,
        on_wedged: Callable[[], None] = stop_this_process,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store_url = store_url
        self._patience = patience
        self._on_wedged = on_wedged
        self._clock = clock
        self._failing_since: float | None = None
        self._stopping = False

    async def observe(self, reachable: bool) -> None:
        now = self._clock()
        if reachable:
            self._failing_since = None
            return
        if self._failing_since is None:
            self._failing_since = now
        failing_for = now - self._failing_since
        if self._stopping or failing_for < self._patience:
            return
        if await self._fresh_client_answers():
            log.error(
                "store.client_wedged",
                failing_for_s=round(failing_for),
                action="stopping the service to be started afresh",
            )
            self._stopping = True
            self._on_wedged()

    async def _fresh_client_answers(self) -> bool:
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            self._store_url,
            serverSelectionTimeoutMS=3000,
            connectTimeoutMS=3000,
            socketTimeoutMS=3000,
        )
        try:
            await client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            await client.close()
        return True
