"""``vcs_shared.runtime.every``: the one shape of the services' background loops."""

from __future__ import annotations

import asyncio

import pytest

from vcs_shared.runtime import every

pytestmark = pytest.mark.unit


async def test_a_full_batch_runs_again_at_once_and_a_failure_does_not_end_the_loop() -> None:
    stop = asyncio.Event()
    failed = asyncio.Event()
    answers: list[bool | Exception] = [True, True, RuntimeError("store away")]
    calls = 0

    async def step() -> bool | None:
        nonlocal calls
        calls += 1
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            failed.set()
            raise answer
        return answer

    # an hour between rounds: only "more is waiting" runs a step again before stop is set
    loop = asyncio.create_task(every(3600, step, stop, failed="test.step_failed"))
    await asyncio.wait_for(failed.wait(), timeout=5)
    await asyncio.sleep(0)  # one turn: the failure was logged and the loop waits its round
    assert (calls, loop.done()) == (3, False)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    assert calls == 3  # stopped while waiting: no further round
