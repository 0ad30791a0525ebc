"""The local stack for ``make run``, the tests and the benchmark: real servers, started here.

* the embedded store: the ``nx-27017`` MongoDB wire-protocol server on a free port,
* an SMTP sink (``aiosmtpd``) that keeps every mail it receives,
* the services as OS processes (:data:`SERVICES`), each with its own environment.

RabbitMQ is a system service; ``scripts/ensure-rabbitmq.sh`` starts (or installs) it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, TextIO

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo import MongoClient

SERVICES = ("intake", "allocator", "notifier", "desk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        executable = Path(sys.executable).with_name("nx-27017")
        self.process = subprocess.Popen(
            [
                str(executable),
                "--host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--data-dir",
                str(self.data_dir / "db"),
                "--log-file",
                str(self.data_dir / "nx-27017.log"),
                "--pid-file",
                str(self.data_dir / "nx-27017.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port)
        client: MongoClient[dict[str, Any]]
        with MongoClient(self.url, serverSelectionTimeoutMS=10000) as client:
            client.admin.command("ping")
        return self

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections hang as in a real outage."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _KeepMail:
    """aiosmtpd handler: keeps each received mail in memory and, optionally, as a file."""

    def __init__(self, folder: Path | None) -> None:
        self.messages: list[Message] = []
        self.folder = folder

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        self.messages.append(message_from_bytes(raw))
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}.eml"
            (self.folder / name).write_bytes(raw)
        return "250 Message accepted for delivery"


class SmtpSink:
    """A real SMTP server on a free local port that keeps every mail it is sent."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self._handler = _KeepMail(folder)
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self._handler.messages

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class ServiceProcess:
    """One service (``python -m vcs_<name>``) as its own OS process, logging to a file."""

    name: str
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: TextIO | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"vcs_{self.name}"],
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, within: float = 60.0) -> None:
        """Returns once the service can work: the intake answers ``/healthz`` with 200, a
        consumer has logged ``<name>.ready``. Raises if it dies first or time runs out."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while not await self._ready(client):
                if not self.alive():
                    tail = self.log_path.read_text()[-3000:] if self.log_path.exists() else ""
                    raise RuntimeError(f"{self.name} died: {tail}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not ready after {within}s: {self.log_path}")
                await asyncio.sleep(0.1)

    async def _ready(self, client: httpx.AsyncClient) -> bool:
        if self.name == "intake":
            try:
                url = f"http://127.0.0.1:{self.env['VCS_PORT']}/healthz"
                return (await client.get(url, timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False
        return self.log_path.exists() and (
            f'"event": "{self.name}.ready"' in self.log_path.read_text()
        )

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything (crash tests)."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then wait for the graceful shutdown; SIGKILL if it does not come."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        return self.process.returncode


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
