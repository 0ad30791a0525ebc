"""The store watchdog stops a service only when its own client keeps failing while the store
answers a fresh one (a wedged client, seen in chaos soaks), never for a store that is down.

Real stores: the one of the test session, and a port where nothing listens. The clock is the
watchdog's own, moved by the test, so no test waits out the patience.
"""

from __future__ import annotations

import pytest

from tests.support.clock import Clock
from vcs_shared.store_watchdog import PATIENCE, StoreWatchdog
from vcs_tools.devstack import free_port

pytestmark = pytest.mark.integration


def watchdog(store_url: str, clock: Clock, stops: list[float]) -> StoreWatchdog:
    return StoreWatchdog(store_url, on_wedged=lambda: stops.append(clock.now), clock=clock)


async def test_a_client_failing_while_the_store_answers_stops_the_service_once(
    mongodb_url: str,
) -> None:
    clock, stops = Clock(), list[float]()
    dog = watchdog(mongodb_url, clock, stops)

    await dog.observe(reachable=False)
    clock.now += PATIENCE - 1
    await dog.observe(reachable=False)
    assert stops == []  # not yet: an ordinary outage heals within the patience

    clock.now += 1
    await dog.observe(reachable=False)
    clock.now += 10
    await dog.observe(reachable=False)
    assert stops == [1000.0 + PATIENCE]


async def test_a_store_that_is_down_stops_nothing() -> None:
    clock, stops = Clock(), list[float]()
    dog = watchdog(f"mongodb://127.0.0.1:{free_port()}", clock, stops)

    await dog.observe(reachable=False)
    clock.now += PATIENCE * 3
    await dog.observe(reachable=False)

    assert stops == []


async def test_an_answer_in_between_starts_the_patience_again(mongodb_url: str) -> None:
    clock, stops = Clock(), list[float]()
    dog = watchdog(mongodb_url, clock, stops)

    await dog.observe(reachable=False)
    clock.now += PATIENCE - 5
    await dog.observe(reachable=True)
    clock.now += 10
    await dog.observe(reachable=False)
    clock.now += PATIENCE - 1
    await dog.observe(reachable=False)

    assert stops == []
