"""A private RabbitMQ node for fault tests and the chaos soak: stopping it harms nobody else.

The system RabbitMQ on 5672 is shared by every test run on the machine and is
never stopped. A fault test starts its own node of the same installed RabbitMQ
(Debian's 3.10) as a child process, on free ports, with everything it writes
under a temporary folder:

* ``RABBITMQ_NODENAME`` ``vcsfault-<random>@localhost`` and its own Erlang
  cookie (``HOME`` points into the folder), so ``rabbitmqctl`` reaches only it
  (the nodes of a test cluster share one: ``cookie``);
* ``RABBITMQ_NODE_IP_ADDRESS``/``RABBITMQ_NODE_PORT`` for AMQP and
  ``RABBITMQ_DIST_PORT`` for Erlang distribution, both free ports;
* ``RABBITMQ_CONFIG_FILE`` and ``RABBITMQ_CONF_ENV_FILE`` of its own, because
  the system's ``/etc/rabbitmq`` files pin the listener to 5672 and the node
  name to ``rabbit@localhost``; a listener in the config file as well as the
  port variable makes 3.10 bind the port twice, so only the variables name it;
* ``RABBITMQ_ENABLED_PLUGINS_FILE`` containing ``[].``: no plugins, fast start.

The scripts in ``/usr/lib/rabbitmq/bin`` are called directly: the ``/usr/sbin``
wrappers switch to the ``rabbitmq`` user and would use the system node's cookie.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from vcs_tools.devstack import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
BOOT_ATTEMPTS = 3
"""Boots of a new node, each on fresh ports, when the last one found a port taken."""


class RabbitCtlFailed(RuntimeError):
    """``rabbitmqctl`` answered with an error; ``str()`` holds its output."""


@dataclass
class PrivateBroker:
    """One RabbitMQ node of our own; ``stop_app``/``start_app`` make a broker outage."""

    base: Path
    name: str = field(default_factory=lambda: f"vcsfault-{secrets.token_hex(4)}@localhost")
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    cookie: str = field(default_factory=lambda: secrets.token_hex(16).upper())
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.base),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> PrivateBroker:
        """Writes the node's files and boots it; returns once it accepts connections."""
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text("loopback_users = none\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        cookie = self.base / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        attempts = 1
        while True:
            try:
                self.boot()
                return self
            except RabbitCtlFailed:
                if attempts == BOOT_ATTEMPTS or not self._port_was_taken():
                    raise
            attempts += 1
            self.port, self.dist_port = free_port(), free_port()

    def _port_was_taken(self) -> bool:
        """The node died at boot because one of its ports was bound meanwhile: a free port
        is free when chosen, and an outgoing connection of any process on the machine may
        take it (the ephemeral range) before the node listens on it."""
        if self.process is None:
            return False
        try:
            self.process.wait(timeout=30)  # it writes its crash dump first
        except subprocess.TimeoutExpired:
            return False  # still running: something else went wrong
        logs = [self.base / "server.log", *(self.base / "log").glob("*.log")]
        return any("eaddrinuse" in path.read_text(errors="replace") for path in logs)

    def boot(self) -> None:
        """Starts ``rabbitmq-server`` with the files already written (again, after a crash:
        the node finds its data, and its cluster, where it left them)."""
        log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            cwd=self.base,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.ctl("wait", str(self.base / "rabbitmq.pid"), "--timeout", "120")

    def ctl(self, *args: str, tool: str = "rabbitmqctl") -> str:
        """``rabbitmqctl -n <our node> ...`` (or another CLI tool: ``rabbitmq-queues``);
        raises :class:`RabbitCtlFailed` with its output."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / tool), "-n", self.name, *args],
            env=self.env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
        if done.returncode != 0:
            raise RabbitCtlFailed(f"{tool} {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def stop_app(self) -> None:
        """The broker goes away: every connection is closed, nothing is accepted."""
        self.ctl("stop_app")

    def start_app(self) -> float:
        """The broker comes back; returns the monotonic time at which it accepts again."""
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "60")
        return time.monotonic()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.ctl("stop")
            self.process.wait(timeout=30)
        except (RabbitCtlFailed, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def available() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").exists()
