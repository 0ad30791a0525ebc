"""The fault injector stops when time is up, even when it is behind its schedule."""

from __future__ import annotations

import asyncio
import signal

import pytest

from vcs_tools.chaos.faults import Chaos

pytestmark = pytest.mark.unit


async def test_time_up_stops_the_faults_even_behind_schedule() -> None:
    until = asyncio.Event()

    async def send(_: str, __: signal.Signals) -> None:
        until.set()  # time runs out during the first fault

    async def stop_broker() -> None:
        until.set()

    async def start_broker() -> None:
        return None

    chaos = Chaos(
        send=send,
        stop_broker=stop_broker,
        start_broker=start_broker,
        services=["intake"],
        seed=2026,
    )
    # every=0: each fault ends after its time, so the injector is always behind its schedule
    await asyncio.wait_for(chaos.run(0, until), timeout=10)
    assert len(chaos.injected) == 1
