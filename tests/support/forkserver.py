"""Service processes forked from a warm parent, so a test does not pay for a fresh interpreter.

A service takes 4-7 s of CPU on these machines to import before it does anything,
and the integration and end-to-end tests start services some four hundred times:
that import was most of the suite's time. A fork server per service imports the
service's modules once; each start is then a ``fork`` of it. The child is a real OS
process of its own (own pid, session, log file, environment, death signal) that runs
the service's ``__main__`` as ``python -m vcs_<name>`` would, only without importing
again. ``vcs run``, the chaos soak and the tests of start-up itself still start fresh
interpreters (:func:`vcs_tools.devstack.launch_fresh`).

The server is single-threaded, so forking it is safe: it waits in ``select`` for a
start request (one JSON line: service environment and log path) or a SIGCHLD, and
answers each start on its connection with the child's pid, then later its exit
status, which :class:`ForkedChild` reads as ``subprocess.Popen`` would give it.

Run as ``python -m tests.support.forkserver <service> <socket path>``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from vcs_tools.children import Child, die_with_parent, end, spawn
from vcs_tools.private_files import open_private, private_dir

REPO = Path(__file__).resolve().parents[2]
"""Where ``python -m tests.support.forkserver`` is found, whatever folder a test is in."""


class ForkedChild:
    """A service forked by a fork server, with the part of ``subprocess.Popen`` that
    :class:`vcs_tools.devstack.ServiceProcess` uses; its exit status comes over the
    connection its start was asked on."""

    def __init__(self, connection: socket.socket, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._connection = connection
        self._answers = connection.makefile("rb")

    def poll(self) -> int | None:
        if self.returncode is None and _readable(self._connection, 0):
            self._read_exit()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not _readable(self._connection, timeout):
                raise subprocess.TimeoutExpired(f"vcs service (pid {self.pid})", timeout or 0)
            self._read_exit()
        assert self.returncode is not None
        return self.returncode

    def _read_exit(self) -> None:
        line = self._answers.readline()
        # No line: the fork server died, and the kernel killed its children with it.
        self.returncode = json.loads(line)["exit"] if line else -signal.SIGKILL
        self._answers.close()
        self._connection.close()


def _readable(connection: socket.socket, timeout: float | None) -> bool:
    readable, _, _ = select.select([connection], [], [], timeout)
    return bool(readable)


@dataclass
class ForkServers:
    """One fork server per service, started on first use, stopped with :meth:`stop`.
    ``launch`` is a :data:`vcs_tools.devstack.Launcher`."""

    folder: Path
    servers: dict[str, Child] = field(default_factory=dict)

    def launch(self, name: str, env: Mapping[str, str], log_path: Path) -> Child:
        socket_path = self._server(name)
        private_dir(log_path.parent)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(str(socket_path))
        request = {"env": dict(env), "log": str(log_path)}
        connection.sendall(json.dumps(request).encode() + b"\n")
        answers = connection.makefile("rb")
        pid = json.loads(answers.readline())["pid"]
        answers.close()
        return ForkedChild(connection, pid)

    def _server(self, name: str) -> Path:
        socket_path = self.folder / f"{name}.sock"
        if name not in self.servers:
            argv = [sys.executable, "-m", "tests.support.forkserver", name, str(socket_path)]
            log_path = self.folder / f"{name}.log"
            self.servers[name] = spawn(argv, env=os.environ, log_path=log_path, cwd=REPO)
            _wait_listening(socket_path, self.servers[name], log_path)
        return socket_path

    def stop(self) -> None:
        for server in self.servers.values():
            end(server, grace=5)
        self.servers.clear()


def _wait_listening(socket_path: Path, server: Child, log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with probe, contextlib.suppress(OSError):
            probe.connect(str(socket_path))
            return
        if server.poll() is not None:
            raise RuntimeError(f"fork server died: {log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"fork server not listening after 120 s: {log_path}")
        time.sleep(0.05)


def serve(name: str, socket_path: Path) -> None:
    """Imports service ``name``, then forks a child for each start asked on ``socket_path``."""
    importlib.import_module(f"vcs_{name}.bootstrap")
    wake_reader, wake_writer = socket.socketpair()
    wake_writer.setblocking(False)
    signal.set_wakeup_fd(wake_writer.fileno())
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the select below
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    socket_path.unlink(missing_ok=True)
    listener.bind(str(socket_path))
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_reader, selectors.EVENT_READ)
    waiting: dict[int, socket.socket] = {}
    own = [listener, wake_reader, wake_writer]
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                connection, _ = listener.accept()
                with connection.makefile("rb") as requests:
                    request = requests.readline()
                if not request:  # a probe of whether the server listens yet
                    connection.close()
                    continue
                closing = [*own, *waiting.values()]
                pid = _fork(name, json.loads(request), connection, closing, selector)
                waiting[pid] = connection
                connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            else:
                with contextlib.suppress(BlockingIOError):
                    wake_reader.recv(4096)
                _report_exits(waiting)


def _fork(
    name: str,
    request: dict[str, Any],
    connection: socket.socket,
    closing: list[socket.socket],
    selector: selectors.BaseSelector,
) -> int:
    server = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        selector.close()
        for own in [*closing, connection]:
            own.close()
        _run_service(name, request["env"], Path(request["log"]), server)
    return pid


def _run_service(name: str, env: dict[str, str], log_path: Path, server: int) -> NoReturn:
    """In the forked child: becomes the service, as ``spawn`` and ``python -m`` would make
    it, runs it, and exits with its status. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        die_with_parent(server)()
        os.umask(0o077)
        log = open_private(log_path)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)
        os.close(nothing)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [f"vcs_{name}"]
        runpy.run_module(f"vcs_{name}", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exited:
        if exited.code is None or isinstance(exited.code, int):
            code = exited.code or 0
        else:
            print(exited.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _report_exits(waiting: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = waiting.pop(pid, None)
        if connection is not None:
            exit_line = json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode()
            with contextlib.suppress(OSError):
                connection.sendall(exit_line + b"\n")
            connection.close()


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]))
