"""The faults the soak injects, one at each interval, each undone before the next.

Kinds come in a seeded shuffled cycle (every kind once, then again in a new
order), so even a short soak meets each of them and a run can be repeated:

* ``broker``: the RabbitMQ node stops (every connection closed) and starts again;
* ``kill``: one service process, chosen at random, is SIGKILLed; the supervisor
  starts it again, as under ``make run``;
* ``freeze-store``: the store is frozen (SIGSTOP): connections hang, then thaw;
* ``mail-down``: the SMTP server stops answering for a while, then answers again.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

KINDS = ("broker", "kill", "freeze-store", "mail-down")


@dataclass(frozen=True, slots=True)
class Injected:
    kind: str
    target: str
    seconds: float  # how long the fault lasted
    at: float  # when it began (seconds since the epoch)


class Chaos:
    """Injects faults into a running system through three small levers."""

    def __init__(
        self,
        *,
        send: Callable[[str, signal.Signals], Awaitable[None]],
        stop_broker: Callable[[], Awaitable[None]],
        start_broker: Callable[[], Awaitable[None]],
        services: Sequence[str],
        seed: int,
    ) -> None:
        self._send = send
        self._stop_broker = stop_broker
        self._start_broker = start_broker
        self._services = tuple(services)
        self._rng = random.Random(seed)
        self.injected: list[Injected] = []

    def kinds(self) -> Iterator[str]:
        while True:
            cycle = list(KINDS)
            self._rng.shuffle(cycle)
            yield from cycle

    async def run(self, every: float, until: asyncio.Event) -> None:
        """A fault at every multiple of ``every`` seconds until ``until``; one that lasts
        past the next time is followed at once by the next, unless time is up.

        ``until`` is read before each wait: behind schedule the wait's timeout is 0, and
        ``asyncio.wait_for`` with no time left cancels the waiter before it can see the event
        set, so a soak on a loaded machine went on injecting faults after its minutes."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        for kind in self.kinds():
            next_at += every
            if until.is_set():
                return
            try:
                await asyncio.wait_for(until.wait(), timeout=max(next_at - loop.time(), 0))
                return
            except TimeoutError:
                pass
            self.injected.append(await self.inject(kind, max_seconds=every * 0.6))

    async def inject(self, kind: str, *, max_seconds: float) -> Injected:
        """One fault of ``kind``, undone before this returns (a kill is undone by the
        supervisor, which this does not wait for)."""
        seconds = round(self._rng.uniform(min(3.0, max_seconds), max_seconds), 1)
        loop = asyncio.get_running_loop()
        began, at = loop.time(), time.time()
        target = kind
        if kind == "broker":
            await self._stop_broker()
            await asyncio.sleep(seconds)
            await self._start_broker()
        elif kind == "kill":
            target = self._rng.choice(self._services)
            await self._send(target, signal.SIGKILL)
        elif kind in ("freeze-store", "mail-down"):
            target = "store" if kind == "freeze-store" else "mail"
            await self._send(target, signal.SIGSTOP)
            try:
                await asyncio.sleep(seconds)
            finally:
                await self._send(target, signal.SIGCONT)
        else:
            raise ValueError(f"unknown fault {kind!r}")
        done = Injected(kind, target, round(loop.time() - began, 1), at)
        log.warning("chaos.fault", kind=done.kind, target=done.target, seconds=done.seconds)
        return done
