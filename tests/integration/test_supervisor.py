"""The supervisor library with small real processes: restarts, crash loops, stop order, and
children that end with their parent.

The whole stack under ``vcs run`` is tested in tests/e2e/test_local_run.py; here each
behaviour is shown on its own, quickly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import in_sessions
from tests.support.waiting import eventually
from vcs_shared.supervision import ChildState, read_status
from vcs_tools.supervisor import ChildSpec, GaveUp, RestartPolicy, Started, Supervisor

pytestmark = pytest.mark.integration

FAST = RestartPolicy(max_exits=3, window=60, first_delay=0.05, max_delay=0.2)


def always(started: Started) -> bool:
    return True


def python(name: str, code: str, tmp_path: Path) -> ChildSpec:
    return ChildSpec(
        name,
        [sys.executable, "-c", textwrap.dedent(code)],
        dict(os.environ),
        tmp_path / f"{name}.log",
        ready=always,
    )


SLEEPER = "import time; time.sleep(120)"


@pytest.fixture
def lines() -> list[str]:
    return []


MakeSupervisor = Callable[..., Supervisor]


@pytest.fixture
def make_supervisor(tmp_path: Path, lines: list[str]) -> Iterator[MakeSupervisor]:
    """Supervisors that say their lines into ``lines``; all stopped after the test."""
    made: list[Supervisor] = []

    def make(specs: list[ChildSpec], policy: RestartPolicy = FAST) -> Supervisor:
        status_file = tmp_path / "status.json"
        made.append(Supervisor(specs, policy=policy, status_file=status_file, say=lines.append))
        return made[-1]

    yield make
    for supervisor in made:
        supervisor.stop()


async def until_checked(supervisor: Supervisor, condition: Callable[[], bool], what: str) -> None:
    async def probe() -> bool:
        supervisor.check()
        return condition()

    await eventually(probe, timeout=20, what=what)


async def test_a_killed_child_is_started_again_counted_and_announced(
    tmp_path: Path, make_supervisor: MakeSupervisor, lines: list[str]
) -> None:
    supervisor = make_supervisor([python("worker", SLEEPER, tmp_path)])
    supervisor.start("worker", within=20)
    first = supervisor.pid("worker")
    assert first is not None

    os.kill(first, signal.SIGKILL)
    await until_checked(
        supervisor,
        lambda: (
            supervisor.status().children["worker"].state is ChildState.RUNNING
            and supervisor.pid("worker") not in (None, first)
        ),
        "the worker started again",
    )

    status = read_status(tmp_path / "status.json")
    assert status is not None
    worker = status.children["worker"]
    assert (worker.restarts, worker.last_exit) == (1, "was killed by SIGKILL")
    assert worker.pid == supervisor.pid("worker") != first
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == 0o600
    assert lines[0].startswith(f"!! worker (pid {first}) was killed by SIGKILL: restarting it in")
    assert lines[1].startswith(f"worker is back (pid {worker.pid}), ")
    assert len(lines) == 2


async def test_a_crash_loop_gives_up_with_a_one_line_reason(
    tmp_path: Path, make_supervisor: MakeSupervisor, lines: list[str]
) -> None:
    broken = python("broken", "raise SystemExit(3)", tmp_path)
    supervisor = make_supervisor([dataclasses.replace(broken, ready=lambda started: False)])

    with pytest.raises(GaveUp) as gave_up:
        supervisor.start("broken", within=20)

    assert str(gave_up.value) == (
        "broken exited 3 times within 60s (the last time it exited with code 3); "
        f"see {tmp_path / 'broken.log'}"
    )
    assert "\n" not in str(gave_up.value)
    assert len(lines) == 2  # the two restarts before the third exit, each announced


async def test_a_slow_crash_loop_gives_up_too_when_it_never_becomes_ready(
    tmp_path: Path, make_supervisor: MakeSupervisor, lines: list[str]
) -> None:
    """Each start fails later than the window allows three exits in (a slow, busy machine):
    three exits in a row without becoming ready in between are a crash loop as well."""
    broken = python("broken", "raise SystemExit(3)", tmp_path)
    never_ready = dataclasses.replace(broken, ready=lambda started: False)
    supervisor = make_supervisor([never_ready], dataclasses.replace(FAST, window=0.01))

    with pytest.raises(GaveUp) as gave_up:
        supervisor.start("broken", within=20)

    assert str(gave_up.value) == (
        "broken exited 3 times in a row without becoming ready "
        f"(the last time it exited with code 3); see {tmp_path / 'broken.log'}"
    )
    assert [line.split(": ", 1)[1].split(" (", 1)[0] for line in lines] == [
        "restarting it in 0.05s",
        "restarting it in 0.1s",
    ]


async def test_a_start_killed_while_it_waits_unready_is_not_a_crash_loop(
    tmp_path: Path, make_supervisor: MakeSupervisor, lines: list[str]
) -> None:
    """A service waits unready while the broker is down; a chaos soak or an operator killing
    it then is no start that failed by itself, however often it happens."""
    broker_up = True
    waiter = dataclasses.replace(
        python("waiter", SLEEPER, tmp_path), ready=lambda started: broker_up
    )
    supervisor = make_supervisor([waiter], dataclasses.replace(FAST, window=0.01))
    supervisor.start("waiter", within=20)
    broker_up = False

    for _ in range(FAST.max_exits + 1):
        killed = supervisor.pid("waiter")
        assert killed is not None
        os.kill(killed, signal.SIGKILL)

        def started_again(killed: int = killed) -> bool:
            return supervisor.pid("waiter") not in (None, killed)

        await until_checked(supervisor, started_again, "a new start")

    waiting = supervisor.status().children["waiter"]
    assert (waiting.state, waiting.restarts) == (ChildState.STARTING, FAST.max_exits + 1)
    assert len([line for line in lines if "was killed by SIGKILL" in line]) == FAST.max_exits + 1


async def test_a_child_alive_but_never_ready_is_given_up_after_the_deadline(
    tmp_path: Path, make_supervisor: MakeSupervisor
) -> None:
    sleeper = python("stuck", SLEEPER, tmp_path)
    supervisor = make_supervisor([dataclasses.replace(sleeper, ready=lambda started: False)])

    with pytest.raises(GaveUp) as gave_up:
        supervisor.start("stuck", within=0.5)

    assert str(gave_up.value) == (
        f"stuck not ready 0.5s after starting; see {tmp_path / 'stuck.log'}"
    )


async def test_tiers_stop_in_reverse_so_the_later_one_finishes_while_the_earlier_one_runs(
    tmp_path: Path, make_supervisor: MakeSupervisor
) -> None:
    store_pid_file = tmp_path / "store.pid"
    verdict = tmp_path / "verdict"
    store = python(
        "store",
        f"""
        import os, pathlib, time
        pathlib.Path({str(store_pid_file)!r}).write_text(str(os.getpid()))
        time.sleep(120)
        """,
        tmp_path,
    )
    service = python(
        "service",
        f"""
        import os, pathlib, signal, time
        def finish(*_):
            store = pathlib.Path({str(store_pid_file)!r}).read_text()
            alive = os.path.exists(f"/proc/{{store}}")
            pathlib.Path({str(verdict)!r}).write_text("store up" if alive else "store gone")
            raise SystemExit(0)
        signal.signal(signal.SIGTERM, finish)
        time.sleep(120)
        """,
        tmp_path,
    )
    supervisor = make_supervisor([store, service])
    supervisor.start("store", within=20)
    supervisor.start("service", within=20)
    sessions = [supervisor.pid("store"), supervisor.pid("service")]

    supervisor.stop()

    assert verdict.read_text() == "store up"
    assert in_sessions(p for p in sessions if p is not None) == []
    status = read_status(tmp_path / "status.json")
    assert status is not None
    assert {c.state for c in status.children.values()} == {ChildState.STOPPED}


async def test_each_stopping_child_is_told_to_stop_once(
    tmp_path: Path, make_supervisor: MakeSupervisor
) -> None:
    """A service stops listening for signals once its shutdown has begun (as
    vcs_shared.lifecycle does), so a second SIGTERM, sent while the supervisor waited for
    an earlier child of the same tier, would kill it half-way."""

    def service(name: str) -> ChildSpec:
        heard = tmp_path / f"{name}.heard"
        return python(
            name,
            f"""
            import signal, time
            stopping = False
            def note(*_):
                global stopping
                with open({str(heard)!r}, "a") as file:
                    file.write("SIGTERM\\n")
                stopping = True
            signal.signal(signal.SIGTERM, note)
            while not stopping:
                time.sleep(0.01)
            time.sleep(0.5)  # finishing the work in its hands, still listening
            """,
            tmp_path,
        )

    supervisor = make_supervisor([service("first"), service("second")])
    supervisor.start("first", "second", within=20)

    supervisor.stop()

    for name in ("first", "second"):
        assert (tmp_path / f"{name}.heard").read_text().splitlines() == ["SIGTERM"], name


async def test_children_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(
            """
            import os, time
            from vcs_tools.children import spawn
            children = [spawn(["sleep", "120"], env=os.environ) for _ in range(2)]
            print(*(child.pid for child in children), flush=True)
            time.sleep(120)
            """
        ),
        stdout=asyncio.subprocess.PIPE,
    )
    assert parent.stdout is not None
    children = [int(pid) for pid in (await parent.stdout.readline()).split()]
    assert len(in_sessions(children)) == 2

    parent.kill()
    await parent.wait()

    async def gone() -> bool:
        return not in_sessions(children)

    await eventually(gone, timeout=10, what="the children of a SIGKILLed parent gone")
