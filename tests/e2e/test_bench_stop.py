"""``make bench`` stopped by SIGTERM (a ``timeout``, a CI limit) leaves nothing running."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import children_of, in_sessions
from tests.support.waiting import eventually
from vcs_tools.children import spawn

pytestmark = pytest.mark.e2e


async def test_a_benchmark_stopped_by_sigterm_stops_its_store_and_services(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VCS_MONGODB_URL", None)  # its own embedded store, which must not outlive it
    output = tmp_path / "bench.out"
    bench = spawn(
        [
            sys.executable,
            "-m",
            "vcs_tools.bench",
            "--quick",
            "--offices=20",
            "--steady-seconds=60",
            f"--results={tmp_path / 'results'}",
        ],
        env=env,
        log_path=output,
    )
    try:

        async def in_the_burst() -> bool:
            assert bench.poll() is None, output.read_text()
            return "burst: 20 requests" in output.read_text()

        await eventually(in_the_burst, timeout=120, what="the benchmark's stack up")
        started = children_of(bench.pid)  # the store and the services, each a session leader
        assert len(started) >= 4, started

        bench.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()

        async def ended() -> bool:
            return bench.poll() is not None

        await eventually(ended, timeout=60, what="the benchmark ended")
        took = time.monotonic() - stopped_at
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()

    assert bench.returncode == 128 + signal.SIGTERM
    assert output.read_text().splitlines()[-1] == (
        "bench stopped by SIGTERM; everything it started is stopped"
    )
    assert in_sessions(started) == []
    request.node.user_properties += [("bench_stopped_after_s", round(took, 1))]
