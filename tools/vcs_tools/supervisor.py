"""Keeps a set of processes running: restarts one that exits, gives up only on a crash loop.

``vcs run`` uses it for the whole local system; a soak test can use it to start a
stack and kill, freeze and watch pieces of it. It has no threads and never
blocks for long: :meth:`Supervisor.check` does one round of bookkeeping and is
called in a loop by its owner (``vcs run`` every 0.2 s; an asyncio program can
call it from a task).

* Children are started in tiers (:meth:`Supervisor.start`, one call per tier:
  the store and the mail sink, then the services) and stopped tier by tier in
  reverse, each tier at once, so the services finish their in-flight work while
  the store still answers.
* A child that exits (or is killed) is started again after a short backoff that
  doubles with each recent exit; the supervisor says so loudly, and again when
  the child is ready. :class:`GaveUp` is raised, with a one-line reason, when a
  child exited ``max_exits`` times within ``window`` seconds, or ``max_exits``
  times in a row without becoming ready in between, each ending by itself (a crash
  loop on a machine so slow that each start takes long to fail; a start killed by a
  signal while it waits, for the broker say, is not one): restarting it again would only hide
  a fault a person has to fix.
* Its state is written (atomically) to a status file after every change; the
  intake shows it in ``/healthz`` (:mod:`vcs_shared.supervision`).
* Children die with the supervisor even when it is SIGKILLed (:mod:`vcs_tools.children`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from vcs_shared.supervision import ChildState, SupervisedChild, SupervisorStatus
from vcs_tools.children import describe_exit, signal_group, spawn, wait_or_kill
from vcs_tools.private_files import replace_text

TICK = 0.2


@dataclass(frozen=True, slots=True)
class Started:
    """One start of a child, as a readiness probe sees it."""

    pid: int
    log_path: Path
    log_offset: int  # where this start's output begins in the (appended) log


Probe = Callable[[Started], bool]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to run one supervised process and how to tell it is ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]  # its whole environment
    log_path: Path
    ready: Probe
    stop_grace: float = 30.0  # SIGTERM, then SIGKILL after this many seconds
    before_start: Callable[[], None] | None = None  # e.g. remove a stale pid file


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_exits: int = 5
    window: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, recent_exits: int) -> float:
        """0.5 s after the first of the recent exits, then 1, 2, 4, 8 s."""
        doublings = max(recent_exits - 1, 0)
        return float(min(self.first_delay * 2**doublings, self.max_delay))


_UP = (ChildState.STARTING, ChildState.RUNNING, ChildState.STOPPING)


class GaveUp(Exception):
    """The supervisor stops everything; ``str()`` is the one-line reason."""


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started: Started | None = None
    state: ChildState = ChildState.STOPPED
    since: datetime | None = None
    restarts: int = 0
    last_exit: str | None = None
    exits: deque[float] = field(default_factory=deque)
    restart_at: float = 0.0
    spawned_at: float = 0.0
    down_since: float | None = None  # when it last exited, until it is ready again
    exits_unready: int = 0  # exits in a row without becoming ready in between

    def view(self) -> SupervisedChild:
        up = self.process is not None and self.state in _UP
        return SupervisedChild(
            state=self.state,
            pid=self.process.pid if up and self.process else None,
            restarts=self.restarts,
            last_exit=self.last_exit,
            since=self.since,
        )


class Supervisor:
    def __init__(
        self,
        specs: Iterable[ChildSpec],
        *,
        policy: RestartPolicy | None = None,
        status_file: Path | None = None,
        say: Callable[[str], None] = print,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self._children = {spec.name: _Child(spec) for spec in specs}
        self._policy = policy or RestartPolicy()
        self._status_file = status_file
        self._say = say
        self._pass_fds = tuple(pass_fds)  # e.g. the run lock, held while any child lives
        self._tiers: list[list[_Child]] = []

    # -- starting and watching -------------------------------------------------

    def start(self, *names: str, within: float = 90.0, stop: threading.Event | None = None) -> bool:
        """Starts the named children and waits until each is ready (restarting any that exit).

        Returns False when ``stop`` was set meanwhile; raises :class:`GaveUp` when one
        is in a crash loop or still not ready ``within`` seconds after it was (last) started.
        """
        tier = [self._children[name] for name in names]
        self._tiers.append(tier)
        for child in tier:
            self._spawn(child)
        self._write_status()
        wait = stop.wait if stop is not None else time.sleep
        while not all(child.state is ChildState.RUNNING for child in tier):
            if stop is not None and stop.is_set():
                return False
            self.check()
            now = time.monotonic()
            late = [
                c.spec
                for c in tier
                if c.state is ChildState.STARTING and now - c.spawned_at > within
            ]
            if late:
                raise GaveUp(
                    f"{', '.join(s.name for s in late)} not ready {within:g}s after starting; "
                    f"see {', '.join(str(s.log_path) for s in late)}"
                )
            wait(TICK)
        return True

    def check(self) -> None:
        """One round: notice exits, restart what is due, notice readiness, record the state."""
        now = time.monotonic()
        changed = False
        for tier in self._tiers:
            for child in tier:
                changed |= self._check_child(child, now)
        if changed:
            self._write_status()

    def _check_child(self, child: _Child, now: float) -> bool:
        if child.state in (ChildState.STARTING, ChildState.RUNNING):
            assert child.process is not None
            assert child.started is not None
            returncode = child.process.poll()
            if returncode is not None:
                self._exited(child, returncode, now)
                return True
            if child.state is ChildState.STARTING and child.spec.ready(child.started):
                child.state = ChildState.RUNNING
                child.exits_unready = 0
                if child.down_since is not None:
                    self._say(
                        f"{child.spec.name} is back (pid {child.process.pid}), "
                        f"{now - child.down_since:.1f}s after it went down"
                    )
                    child.down_since = None
                return True
        elif child.state is ChildState.RESTARTING and now >= child.restart_at:
            child.restarts += 1
            self._spawn(child)
            return True
        return False

    def _exited(self, child: _Child, returncode: int, now: float) -> None:
        assert child.process is not None
        signal_group(child.process, signal.SIGKILL)  # anything it started and left behind
        how = describe_exit(returncode)
        child.last_exit = how
        child.exits.append(now)
        while child.exits and child.exits[0] < now - self._policy.window:
            child.exits.popleft()
        if child.state is ChildState.STARTING and returncode >= 0:
            # Only a start that ended by itself failed. A service waits unready for as long
            # as the broker is down; killed then (by an operator, a chaos soak), it did not.
            child.exits_unready += 1
        name, log, most = child.spec.name, child.spec.log_path, self._policy.max_exits
        loop = None
        if len(child.exits) >= most:
            loop = f"{len(child.exits)} times within {self._policy.window:g}s"
        elif child.exits_unready >= most:  # a slow crash loop: each start takes long to fail
            loop = f"{child.exits_unready} times in a row without becoming ready"
        if loop is not None:
            child.state = ChildState.STOPPED
            raise GaveUp(f"{name} exited {loop} (the last time it {how}); see {log}")
        strikes = max(len(child.exits), child.exits_unready)
        delay = self._policy.delay(strikes)
        child.state = ChildState.RESTARTING
        child.restart_at = now + delay
        if child.down_since is None:
            child.down_since = now
        self._say(
            f"!! {name} (pid {child.process.pid}) {how}: restarting it in {delay:g}s "
            f"(exit {strikes} of {most} allowed; log: {log})"
        )

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        if spec.before_start is not None:
            spec.before_start()
        offset = spec.log_path.stat().st_size if spec.log_path.exists() else 0
        try:
            child.process = spawn(
                spec.argv,
                env=spec.env,
                log_path=spec.log_path,
                pass_fds=self._pass_fds,
            )
        except OSError as exc:
            raise GaveUp(f"{spec.name} could not be started: {exc}") from exc
        child.started = Started(child.process.pid, spec.log_path, offset)
        child.state = ChildState.STARTING
        child.since = datetime.now(UTC)
        child.spawned_at = time.monotonic()

    # -- what a soak test (or an operator tool) needs --------------------------

    def pid(self, name: str) -> int | None:
        """The child's current process id, none while it is down."""
        return self._children[name].view().pid

    def send(self, name: str, sig: signal.Signals) -> None:
        """Sends ``sig`` to the child's process group: SIGKILL to crash it, SIGSTOP to freeze
        it (SIGCONT thaws it); the supervisor then reacts as it would to the real fault."""
        child = self._children[name]
        if child.process is not None and child.process.poll() is None:
            signal_group(child.process, sig)

    def status(self) -> SupervisorStatus:
        return SupervisorStatus(
            pid=os.getpid(),
            children={name: child.view() for name, child in self._children.items()},
        )

    def _write_status(self) -> None:
        if self._status_file is not None:
            replace_text(self._status_file, self.status().model_dump_json(indent=2))

    # -- stopping ---------------------------------------------------------------

    def stop(self) -> None:
        """Stops every child, tier by tier in reverse; each finishes its in-flight work
        (SIGTERM, SIGKILL only after its grace)."""
        for tier in reversed(self._tiers):
            running = [c for c in tier if c.process is not None and c.process.poll() is None]
            for child in running:
                child.state = ChildState.STOPPING
            self._write_status()
            for child in running:
                assert child.process is not None
                signal_group(child.process, signal.SIGCONT)
                signal_group(child.process, signal.SIGTERM)
            deadline = time.monotonic() + max((c.spec.stop_grace for c in tier), default=0)
            for child in running:
                assert child.process is not None
                wait_or_kill(child.process, grace=max(deadline - time.monotonic(), 0.0))
            for child in tier:
                child.state = ChildState.STOPPED
        self._tiers.clear()
        self._write_status()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
