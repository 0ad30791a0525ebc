"""Child processes that end when the process that started them ends, however it ends.

Every process the local stack starts (the store, the SMTP sink, the services)
is spawned here:

* in a session (and process group) of its own, so a Ctrl-C in the terminal
  reaches only the parent, which then stops the children in order, and the
  whole group of a child can be signalled at once;
* with ``PR_SET_PDEATHSIG`` = SIGKILL: the kernel kills the child when its
  parent dies, however it died, so no child runs on as an orphan holding
  ports and data folders. It is set between ``fork`` and ``exec``, so it
  holds for third-party executables (``nx-27017``) too;
* with umask ``077``: whatever the child creates (the store's files, its
  logs) is readable by its owner only.

A parent that stops normally stops its children gracefully itself (:func:`end`);
the death signal is for a parent that could not (SIGKILL, a crash). Then the
stack goes down at once, as in a power cut, which the services are built to
survive: what they held unacked is redelivered, their outboxes are swept at the
next start. SIGTERM would not be better: the embedded store dies with the
parent, so a service's graceful stop could only wait for it in vain (measured:
about 6 s), a child that hung in its shutdown would stay for good, and a frozen
(SIGSTOPped) one would never act on it.

The kernel sends the death signal when the *thread* that forked the child
ends, so children are spawned from the main thread only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from vcs_tools.private_files import open_private, private_dir

PR_SET_PDEATHSIG = 1
# Looked up here, not in the forked child: a symbol lookup there could wait forever on a
# loader lock that another thread of the parent held at the moment of the fork.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


class Child(Protocol):
    """A started child as :func:`end` and :func:`signal_group` use it: a ``subprocess.Popen``,
    or a process forked by another parent that reports its exit (the tests' fork servers)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path | None = None,
    pass_fds: Sequence[int] = (),
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Starts ``argv`` with stdout and stderr appended to ``log_path`` (else discarded);
    ``pass_fds`` stay open in the child."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("spawn children from the main thread: their death signal follows it")
    if log_path is not None:
        private_dir(log_path.parent)
        output = open_private(log_path)
    else:
        output = subprocess.DEVNULL
    try:
        return subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            umask=0o077,
            pass_fds=tuple(pass_fds),
            cwd=cwd,
            preexec_fn=die_with_parent(os.getpid()),
        )
    finally:
        if log_path is not None:
            os.close(output)


def die_with_parent(parent: int) -> Callable[[], None]:
    """Runs in the child right after the fork (before exec, if any): a few system calls,
    nothing that could block."""

    def arm() -> None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


def signal_group(process: Child, sig: signal.Signals) -> None:
    """Sends ``sig`` to the child's process group (itself and anything it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def end(process: Child, *, grace: float = 30.0) -> int:
    """Stops the child and its group: SIGTERM (after SIGCONT, in case it was frozen), then
    SIGKILL if it has not exited within ``grace`` seconds. Returns its exit status."""
    if process.poll() is None:
        signal_group(process, signal.SIGCONT)
        signal_group(process, signal.SIGTERM)
    return wait_or_kill(process, grace=grace)


def wait_or_kill(process: Child, *, grace: float) -> int:
    """Waits up to ``grace`` seconds for a child already told to stop, then SIGKILLs its
    group. It sends no second SIGTERM: a service stops listening for signals once the
    first has started its shutdown, so a second one would kill it half-way."""
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        process.wait()
    signal_group(process, signal.SIGKILL)  # whatever it started and left behind
    return process.wait()


def describe_exit(returncode: int) -> str:
    """``exited with code 1`` or ``was killed by SIGKILL``: how a child ended, for people."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"
