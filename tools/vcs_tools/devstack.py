"""The local stack for ``make run``, the tests and the benchmark: real servers, started here.

* the embedded store: the ``nx-27017`` MongoDB wire-protocol server on a free port,
* an SMTP sink (``aiosmtpd``) that keeps every mail it receives,
* the services as OS processes (:data:`SERVICES`), each with its own environment,
* how to tell each of them is ready (probes for :mod:`vcs_tools.supervisor`).

Every process is started through :mod:`vcs_tools.children`, so none outlives
the process that started it. RabbitMQ is a system service;
``scripts/ensure-rabbitmq.sh`` starts (or installs) it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from pymongo import MongoClient

from vcs_tools.children import Child, end, signal_group, spawn
from vcs_tools.mailsink import KeepMail
from vcs_tools.private_files import private_dir
from vcs_tools.supervisor import ChildSpec, Probe, Started

SERVICES = ("intake", "allocator", "notifier", "desk")
METRICS_PORTS = {"intake": 9101, "allocator": 9102, "notifier": 9103, "desk": 9104}
"""Where ``make run``'s services serve Prometheus ``/metrics`` (127.0.0.1 only)."""


PORTS_FROM = 20000
"""The lowest port :func:`free_port` hands out (well above every fixed port of the project)."""
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A port nothing listens on now on 127.0.0.1, for a server of a stack or a test to take.

    Below the kernel's ephemeral range, where binding port 0 would pick one: a port of that
    range can be taken by any outgoing connection on the machine (a test's broker or store
    client) between being found free and the server listening on it, which once failed a
    fault test's private RabbitMQ at boot (``eaddrinuse``)."""
    below = int(EPHEMERAL_RANGE.read_text().split()[0]) if EPHEMERAL_RANGE.exists() else 32768
    for _ in range(100 if below > PORTS_FROM else 0):
        port = random.randrange(PORTS_FROM, below)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: another
            return port
    with socket.socket() as sock:  # none free below the range: any free port, as before
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


def internal_apis() -> dict[str, str]:
    """Free ports for the internal APIs (allocator, desk, notifier) and where the intake
    forwards to them, for a stack beside another one (a test's, a soak's) that must not take
    the fixed ports of ``make run``; a second allocator or notifier of a stack finds its port
    taken and goes on without."""
    allocator_port, desk_port, notifier_port = free_port(), free_port(), free_port()
    return {
        "VCS_ADMIN_PORT": str(allocator_port),
        "VCS_ALLOCATOR_URL": f"http://127.0.0.1:{allocator_port}",
        "VCS_DESK_PORT": str(desk_port),
        "VCS_DESK_URL": f"http://127.0.0.1:{desk_port}",
        "VCS_NOTIFIER_PORT": str(notifier_port),
        "VCS_NOTIFIER_URL": f"http://127.0.0.1:{notifier_port}",
    }


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def port_open(port: int) -> Probe:
    """Ready once something accepts connections on the local ``port``."""

    def probe(started: Started) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return probe


def http_ok(url: str) -> Probe:
    """Ready once ``url`` answers 200."""

    def probe(started: Started) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def logged(event: str) -> Probe:
    """Ready once this start of the process has logged ``event`` (a structlog JSON line)."""
    needle = f'"event": "{event}"'.encode()

    def probe(started: Started) -> bool:
        try:
            with started.log_path.open("rb") as log:
                log.seek(started.log_offset)
                return needle in log.read()
        except OSError:
            return False

    return probe


def service_ready(name: str, env: Mapping[str, str]) -> Probe:
    """The intake is ready when ``/healthz`` answers 200, a consumer once it logged
    ``<name>.ready``."""
    if name == "intake":
        return http_ok(f"http://127.0.0.1:{env['VCS_PORT']}/healthz")
    return logged(f"{name}.ready")


def service_command(name: str) -> list[str]:
    return [sys.executable, "-m", f"vcs_{name}"]


Launcher = Callable[[str, Mapping[str, str], Path], Child]
"""Starts service ``name`` with an environment, its output appended to a log file."""


def launch_fresh(name: str, env: Mapping[str, str], log_path: Path) -> Child:
    """``python -m vcs_<name>``: a fresh interpreter, as ``vcs run`` starts a service."""
    return spawn(service_command(name), env=env, log_path=log_path)


def store_command(data_dir: Path, port: int) -> list[str]:
    """``nx-27017`` on ``port`` with its data, log and pid files under ``data_dir``."""
    return [
        str(Path(sys.executable).with_name("nx-27017")),
        "--host",
        "127.0.0.1",
        "-p",
        str(port),
        "--data-dir",
        str(data_dir / "db"),
        "--log-file",
        str(data_dir / "nx-27017.log"),
        "--pid-file",
        str(store_pid_file(data_dir)),
    ]


def store_pid_file(data_dir: Path) -> Path:
    """``nx-27017`` refuses to start while its pid file names a live process (a reused pid
    after a crash, say); whoever starts it knows the pid anyway and removes the file first."""
    return data_dir / "nx-27017.pid"


def mail_sink_command(folder: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "vcs_tools.mailsink", f"--port={port}", f"--folder={folder}"]


@dataclass(frozen=True, slots=True)
class Infrastructure:
    """What the services need, as supervised children: the store (unless one is given) and
    the mail sink."""

    specs: list[ChildSpec]
    mongodb_url: str
    smtp_port: int
    embedded_store: bool


def infrastructure(data_dir: Path, *, mongodb_url: str | None = None) -> Infrastructure:
    """The embedded store (data in ``store/``) unless ``mongodb_url`` is given, and the mail
    sink (mails in ``mail/``), on free ports, logging to ``logs/``; for ``vcs run`` and for a
    soak test that wants the same system under its own supervisor."""
    logs = data_dir / "logs"
    specs: list[ChildSpec] = []
    if not mongodb_url:
        store_dir = private_dir(data_dir / "store")
        store_port = free_port()
        mongodb_url = f"mongodb://127.0.0.1:{store_port}/"
        specs.append(
            ChildSpec(
                "store",
                store_command(store_dir, store_port),
                os.environ,
                logs / "store.log",
                ready=port_open(store_port),
                stop_grace=10,
                before_start=functools.partial(store_pid_file(store_dir).unlink, missing_ok=True),
            )
        )
    smtp_port = free_port()
    specs.append(
        ChildSpec(
            "mail",
            mail_sink_command(data_dir / "mail", smtp_port),
            os.environ,
            logs / "mail.log",
            ready=port_open(smtp_port),
            stop_grace=10,
        )
    )
    return Infrastructure(specs, mongodb_url, smtp_port, embedded_store=specs[0].name == "store")


def service_specs(
    env: Mapping[str, str],
    logs: Path,
    *,
    names: Sequence[str] = SERVICES,
    own_env: Mapping[str, Mapping[str, str]] | None = None,
) -> list[ChildSpec]:
    """The services as supervised children: ``env`` (from :func:`service_env`) for all,
    ``own_env[name]`` on top for one (its own broker user, say)."""
    return [
        ChildSpec(
            name,
            service_command(name),
            {**os.environ, **env, **(own_env or {}).get(name, {})},
            logs / f"{name}.log",
            ready=service_ready(name, env),
        )
        for name in names
    ]


@dataclass
class EmbeddedStore:
    """An ``nx-27017`` server with its data, log and pid files under ``data_dir``."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> EmbeddedStore:
        private_dir(self.data_dir)
        store_pid_file(self.data_dir).unlink(missing_ok=True)
        self.process = spawn(store_command(self.data_dir, self.port), env=os.environ)
        wait_for_port("127.0.0.1", self.port)
        client: MongoClient[dict[str, Any]]
        with MongoClient(self.url, serverSelectionTimeoutMS=10000) as client:
            client.admin.command("ping")
        return self

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections hang as in a real outage."""
        assert self.process is not None
        signal_group(self.process, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        signal_group(self.process, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            end(self.process, grace=10)


class SmtpSink:
    """A real SMTP server on a free local port, in this process, keeping every mail it is sent."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self._handler = KeepMail(folder)
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self._handler.messages

    def refuse(self, reply: str | None) -> None:
        """Answers every recipient with ``reply`` (``"550 5.1.1 no such mailbox"``) from now on,
        as a relay refusing would; None accepts again."""
        self._handler.refusal = reply

    @property
    def refused(self) -> int:
        """How many recipients were refused so far."""
        return self._handler.refused

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class ServiceProcess:
    """One service (``python -m vcs_<name>``) as its own OS process, logging to a file;
    ``launch`` says how it is started (the tests fork it from a warm parent)."""

    name: str
    env: Mapping[str, str]
    log_path: Path
    launch: Launcher = launch_fresh
    process: Child | None = None
    started: Started | None = None

    def start(self) -> ServiceProcess:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = self.launch(self.name, {**os.environ, **self.env}, self.log_path)
        self.started = Started(self.process.pid, self.log_path, offset)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, within: float = 60.0) -> None:
        """Returns once the service can work (:func:`service_ready`). Raises if it dies first
        or time runs out."""
        assert self.started is not None
        ready = service_ready(self.name, self.env)
        deadline = time.monotonic() + within
        while not await asyncio.to_thread(ready, self.started):
            if not self.alive():
                tail = self.log_path.read_text()[-3000:] if self.log_path.exists() else ""
                raise RuntimeError(f"{self.name} died: {tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {within}s: {self.log_path}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything (crash tests)."""
        if self.alive():
            assert self.process is not None
            signal_group(self.process, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then wait for the graceful shutdown; SIGKILL if it does not come."""
        if self.process is None:
            return None
        return end(self.process, grace=timeout)


def service_env(
    *,
    amqp_url: str,
    mongodb_url: str,
    credentials_keys: str,
    jwt_secret: str,
    namespace: str,
    smtp_port: int,
    intake_port: int = 8000,
    pool_file: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The environment the three services share in a local stack."""
    env = {
        "VCS_AMQP_URL": amqp_url,
        "VCS_MONGODB_URL": mongodb_url,
        "VCS_CREDENTIALS_KEYS": credentials_keys,
        "VCS_JWT_SECRET": jwt_secret,
        "VCS_NAMESPACE": namespace,
        "VCS_SMTP_HOST": "127.0.0.1",
        "VCS_SMTP_PORT": str(smtp_port),
        "VCS_PORT": str(intake_port),
        "VCS_LOG_JSON": "true",
    }
    if pool_file is not None:
        env["VCS_POOL_FILE"] = str(pool_file)
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


@contextlib.contextmanager
def running(processes: list[ServiceProcess]) -> Iterator[list[ServiceProcess]]:
    """Starts the processes; stops them all (gracefully) on the way out, whatever happened."""
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in reversed(processes):
            process.stop()
