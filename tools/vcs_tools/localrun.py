"""``vcs run`` (``make run``): the whole system on this machine, supervised, until stopped.

* One ``vcs run`` per data folder (``.data`` by default): a second one says, in one
  line, which process runs and how to stop it (:class:`RunLock`).
* The embedded store, the SMTP sink and the services run under a
  :class:`~vcs_tools.supervisor.Supervisor`: one that exits or is killed is
  started again after a short backoff; a crash loop stops everything with a
  one-line reason. ``/healthz`` shows each process and its restarts.
* Ctrl-C, SIGTERM and SIGHUP (the terminal closed) stop everything, each service
  finishing the work in its hands; if this process itself is killed, the kernel
  stops its children (:mod:`vcs_tools.children`).
* Everything under the data folder is readable by its owner only
  (:mod:`vcs_tools.private_files`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika

from vcs_shared.credentials import new_key
from vcs_tools.devstack import (
    METRICS_PORTS,
    SERVICES,
    infrastructure,
    service_env,
    service_specs,
)
from vcs_tools.private_files import append_text, open_private, private_dir, replace_text
from vcs_tools.rabbitmq import SERVICE_USERS, local_service_urls, password_variable
from vcs_tools.supervisor import TICK, GaveUp, Supervisor

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LEFTOVER_WAIT = 30.0  # how long a new run waits for the children of a killed one to end


LOCAL_SECRETS: dict[str, Callable[[], str]] = {
    "VCS_CREDENTIALS_KEYS": new_key,
    "VCS_JWT_SECRET": lambda: secrets.token_urlsafe(48),
    **{password_variable(s): lambda: secrets.token_hex(24) for s in SERVICE_USERS},
}


def local_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets for the local stack, made once and kept in ``.data/dev.env`` (never in the repo).

    A secret added to the project later is appended to an existing file, so an old
    ``.data`` keeps its keys (and what they sealed) and gains the new one.
    ``vcs token issue`` reads the same file to sign tokens the local intake accepts.
    """
    path = private_dir(data_dir) / "dev.env"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    known = {key.strip(): value.strip() for key, value in pairs}
    missing = {key: make() for key, make in LOCAL_SECRETS.items() if key not in known}
    if missing:
        with append_text(path) as file:
            file.writelines(f"{key}={value}\n" for key, value in missing.items())
    return {**known, **missing}


def say(text: str) -> None:
    """One line on the terminal; a closed terminal (SIGHUP) or pipe must not stop a shutdown."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


class AlreadyRunning(Exception):
    """Another ``vcs run`` uses this data folder; ``str()`` says which and how to stop it."""


@dataclass
class RunLock:
    """``<data folder>/run.lock``: an exclusive ``flock`` while this data folder is in use.

    The lock is inherited by every child (``pass_fds``), so it is free only when
    the supervisor *and* all its children are gone: after a SIGKILLed supervisor
    the next run waits until the kernel has stopped the last child, instead of
    starting a second store on the same data. The file names the holder (pid,
    its start time, port) for the one-line message of a second run.
    """

    path: Path
    fd: int

    @classmethod
    def acquire(cls, path: Path, *, port: int, stop: threading.Event) -> RunLock | None:
        """The lock, or None when ``stop`` was set while waiting for a killed run's children."""
        fd = open_private(path, os.O_RDWR | os.O_CREAT)
        deadline = time.monotonic() + LEFTOVER_WAIT
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _Holder.parse(os.pread(fd, 200, 0))
                if holder is None or holder.alive():
                    os.close(fd)
                    raise AlreadyRunning(_already_running(holder, path)) from None
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise AlreadyRunning(
                        f"processes of a killed vcs run (pid {holder.pid}) still hold {path} "
                        f"after {LEFTOVER_WAIT:g}s; `fuser -v {path}` lists them"
                    ) from None
                if not waiting:
                    say(
                        f"an earlier vcs run (pid {holder.pid}) was killed; waiting for its "
                        "processes to stop"
                    )
                    waiting = True
                if stop.wait(TICK):
                    os.close(fd)
                    return None
        os.ftruncate(fd, 0)
        me = os.getpid()
        os.pwrite(fd, f"{me} {_start_time(me)} {port}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True, slots=True)
class _Holder:
    pid: int
    start_time: str
    port: int

    @classmethod
    def parse(cls, raw: bytes) -> _Holder | None:
        try:
            pid, start_time, port = raw.decode().split()
            return cls(int(pid), start_time, int(port))
        except ValueError:
            return None

    def alive(self) -> bool:
        """The same process (not a later one that reuses its pid) still runs."""
        return _start_time(self.pid) == self.start_time


def _start_time(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot), or ``-`` when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "-"


def _already_running(holder: _Holder | None, path: Path) -> str:
    if holder is None:
        return f"vcs run is already running with this data folder ({path})"
    return (
        f"vcs run is already running here (pid {holder.pid}, "
        f"http://127.0.0.1:{holder.port}); stop it with Ctrl-C in its terminal, "
        f"or: kill {holder.pid}"
    )


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


@contextlib.contextmanager
def stopped_by_signals(stop: threading.Event) -> Iterator[list[str]]:
    """While inside, SIGINT, SIGTERM and SIGHUP only set ``stop``; yields the names received."""
    received: list[str] = []

    def handle(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_local(root: Path, *, port: int = 8000, data_dir: Path | None = None) -> int:
    data_dir = private_dir(data_dir or root / ".data")
    stop = threading.Event()
    with stopped_by_signals(stop) as received:
        try:
            lock = RunLock.acquire(data_dir / "run.lock", port=port, stop=stop)
        except AlreadyRunning as exc:
            say(str(exc))
            return 1
        if lock is None:
            return 1
        try:
            if port_in_use(port):
                say(
                    f"port {port} is in use by another program: stop it, or choose another "
                    "port with --port"
                )
                return 1
            return _supervise(root, data_dir, port, lock, stop, received)
        finally:
            lock.release()


def _supervise(
    root: Path,
    data_dir: Path,
    port: int,
    lock: RunLock,
    stop: threading.Event,
    received: list[str],
) -> int:
    started = time.monotonic()
    logs = private_dir(data_dir / "logs")
    local = local_secrets(data_dir)
    base = infrastructure(data_dir, mongodb_url=os.environ.get("VCS_MONGODB_URL"))
    run_env = data_dir / "run.env"
    status_file = data_dir / "supervisor.json"
    env = service_env(
        amqp_url=os.environ.get("VCS_AMQP_URL", DEFAULT_AMQP_URL),
        mongodb_url=base.mongodb_url,
        credentials_keys=os.environ.get("VCS_CREDENTIALS_KEYS", local["VCS_CREDENTIALS_KEYS"]),
        jwt_secret=os.environ.get("VCS_JWT_SECRET", local["VCS_JWT_SECRET"]),
        namespace=os.environ.get("VCS_NAMESPACE", "vcs"),
        smtp_port=base.smtp_port,
        intake_port=port,
        pool_file=root / "deploy" / "pools" / "region-12.csv",
        extra={
            "VCS_SUPERVISOR_STATUS_FILE": status_file,
            "VCS_SEND_JOURNAL": data_dir / "notifier" / "sent-mails.jsonl",
        },
    )
    own_users = {} if "VCS_AMQP_URL" in os.environ else _service_users(root, local, env)
    own_env = {
        name: {**own_users.get(name, {}), "VCS_METRICS_PORT": str(METRICS_PORTS[name])}
        for name in SERVICES
    }
    services = service_specs(env, logs, own_env=own_env)
    reason: str | None = None
    supervisor = Supervisor(
        [*base.specs, *services],
        status_file=status_file,
        say=Say(logs / "supervisor.log"),
        pass_fds=[lock.fd],
    )
    with supervisor:
        try:
            if supervisor.start(*(s.name for s in base.specs), within=30, stop=stop):
                if base.embedded_store:  # where `vcs token revoke` finds the store
                    replace_text(run_env, f"VCS_MONGODB_URL={base.mongodb_url}\n")
                if supervisor.start(*(s.name for s in services), within=90, stop=stop):
                    say(
                        f"DOPA VCS is up in {time.monotonic() - started:.1f}s: "
                        f"http://127.0.0.1:{port}/docs  (health: /healthz, mail: "
                        f"{data_dir / 'mail'}, logs: {logs}); Ctrl-C stops it "
                        f"(or: kill {os.getpid()})"
                    )
                    while not stop.wait(TICK):
                        supervisor.check()
        except GaveUp as exc:
            reason = str(exc)
        why = f" ({', '.join(received)})" if received else ""
        say(f"stopping{why}: each service finishes the work in its hands")
    if base.embedded_store:
        run_env.unlink(missing_ok=True)
    if reason is not None:
        say(f"vcs run gave up: {reason}")
        return 1
    say("stopped")
    return 0


class Say:
    """The supervisor's lines, on the terminal and, with the time, in ``logs/supervisor.log``."""

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path

    def __call__(self, text: str) -> None:
        say(text)
        with contextlib.suppress(OSError), append_text(self._log_path) as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {text}\n")


def _service_users(
    root: Path, local: dict[str, str], env: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Each service as its own least-privilege RabbitMQ user, when this broker allows it
    (root and rabbitmqctl on this machine); otherwise all of them as guest."""
    try:
        urls = local_service_urls(root, DEFAULT_AMQP_URL, env["VCS_NAMESPACE"], local)
    except (aio_pika.exceptions.AMQPError, OSError, RuntimeError) as exc:
        say(f"RabbitMQ users not set up ({exc!r}); the services connect as guest")
        return {}
    if urls is None:
        say(
            "RabbitMQ: per-service users need root and rabbitmqctl on this machine; "
            "the services connect as guest"
        )
        return {}
    return {
        name: {"VCS_AMQP_URL": url, "VCS_DECLARE_TOPOLOGY": "false"} for name, url in urls.items()
    }
