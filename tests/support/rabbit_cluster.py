"""A three-node RabbitMQ cluster of a test's own, on this machine, for the ``cluster`` tier.

Each node is a separate ``rabbitmq-server`` of the installed RabbitMQ, started as a child
process, never touching the system's node on 5672:

* its own ``RABBITMQ_NODENAME`` (``vcsclu<hex>-<n>@localhost``), AMQP port and Erlang
  distribution port (free ports), data (``mnesia``) and log folders under the test's temporary
  folder, and its own config files (the system's ``/etc/rabbitmq`` files pin the listener to
  5672 and the node name; a listener in the config file as well as the port variable makes
  3.10 bind the port twice, so only the variables name it);
* one Erlang cookie shared by the three nodes (each node's ``HOME`` holds a copy), different
  from the system node's, so the nodes can cluster and ``rabbitmqctl`` reaches only them;
* no plugins (``[].``): a fast start.

Nodes 2 and 3 join node 1 with ``rabbitmqctl join_cluster``. The scripts in
``/usr/lib/rabbitmq/bin`` are called directly: the ``/usr/sbin`` wrappers switch to the
``rabbitmq`` user and would use the system node's cookie.

Faults: :meth:`ClusterNode.kill` is a crash (SIGKILL of the Erlang VM: the kernel closes
every socket at once), :meth:`ClusterNode.stop_app` a planned stop; both come back with
:meth:`ClusterNode.start` / :meth:`ClusterNode.start_app`, rejoining the cluster by themselves.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vcs_tools.devstack import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class RabbitCtlFailed(AssertionError):
    """A ``rabbitmqctl`` call failed; the message holds its output (fails the test)."""


@dataclass
class ClusterNode:
    """One node: its name, ports and folders, and the ``rabbitmq-server`` process."""

    base: Path
    name: str
    cookie: str
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def address(self) -> str:
        """``host:port`` as the services log the node they use."""
        return f"127.0.0.1:{self.port}"

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

    def prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text("loopback_users = none\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        cookie = self.base / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)

    def start(self) -> None:
        """Starts the node (again, after a crash: it finds its cluster in its data folder)
        and returns once it accepts connections."""
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
        """``rabbitmqctl -n <this node> ...`` (or ``rabbitmq-queues``); fails with its output."""
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

    def version(self) -> str:
        return self.ctl("version").strip()

    def join(self, first: ClusterNode) -> None:
        self.ctl("stop_app")
        self.ctl("join_cluster", first.name)
        self.ctl("start_app")

    def kill(self) -> None:
        """A crash: SIGKILL to the Erlang VM (its pid file), no goodbye to anyone."""
        pid = int((self.base / "rabbitmq.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=60)

    def stop_app(self) -> None:
        """A planned stop of the broker on this node (the VM stays, the cluster sees it go)."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "120")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.ctl("stop")
            self.process.wait(timeout=60)
        except (RabbitCtlFailed, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


@dataclass
class RabbitCluster:
    """Three nodes joined into one cluster."""

    nodes: list[ClusterNode]

    @classmethod
    def start(cls, base: Path, size: int = 3) -> RabbitCluster:
        """Boots the nodes side by side, then joins nodes 2.. to node 1."""
        prefix = f"vcsclu{secrets.token_hex(3)}"
        cookie = secrets.token_hex(16).upper()
        nodes = [
            ClusterNode(base / f"node{n}", f"{prefix}-{n}@localhost", cookie)
            for n in range(1, size + 1)
        ]
        cluster = cls(nodes)
        try:
            for node in nodes:
                node.prepare()
            with ThreadPoolExecutor(size) as pool:
                list(pool.map(ClusterNode.start, nodes))
            for node in nodes[1:]:
                node.join(nodes[0])
            running = cluster.running_nodes()
            assert running == {n.name for n in nodes}, running
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def urls(self, first: int = 0) -> str:
        """``VCS_AMQP_URL`` for a client listing every node, starting with node ``first``."""
        order = self.nodes[first:] + self.nodes[:first]
        return ",".join(node.url for node in order)

    def by_name(self, name: str) -> ClusterNode:
        return next(node for node in self.nodes if node.name == name)

    def ask(self, *args: str) -> str:
        """``rabbitmqctl ...`` on the first node that answers (one may be down)."""
        failures = []
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                return node.ctl(*args)
            except RabbitCtlFailed as failed:
                failures.append(str(failed))
        raise RabbitCtlFailed(f"no node of the cluster answers: {failures}")

    def running_nodes(self) -> set[str]:
        status = json.loads(self.ask("cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])

    def queues(self, prefix: str) -> dict[str, dict[str, object]]:
        """``name -> {type, leader, members, online}`` of the queues whose name starts so."""
        listed = self.ask(
            "list_queues", "name", "type", "leader", "members", "online", "--formatter", "json"
        )
        return {q["name"]: q for q in json.loads(listed) if str(q["name"]).startswith(prefix)}

    def leader_of(self, queue: str) -> ClusterNode:
        return self.by_name(str(self.queues(queue)[queue]["leader"]))

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


def available() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").exists()
