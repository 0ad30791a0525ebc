"""A three-node RabbitMQ cluster of a test's own, on this machine, for the ``cluster`` tier.

Each node is a private node of the installed RabbitMQ (:mod:`vcs_tools.rabbitnode`: its own
``RABBITMQ_NODENAME``, AMQP and Erlang distribution ports, data and log folders and config
files, started as a child process; the system's node on 5672 is never touched), and the
three share one Erlang cookie, different from the system node's, so they can cluster and
``rabbitmqctl`` reaches only them. Nodes 2 and 3 join node 1 with ``rabbitmqctl join_cluster``.

Faults: :meth:`ClusterNode.kill` is a crash (SIGKILL of the Erlang VM: the kernel closes every
socket at once), ``stop_app`` a planned stop; they come back with :meth:`ClusterNode.restart`
and ``start_app``, rejoining the cluster by themselves.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vcs_tools.rabbitnode import PrivateBroker, RabbitCtlFailed


@dataclass
class ClusterNode(PrivateBroker):
    """One node of the cluster: a private node (:class:`~vcs_tools.rabbitnode.PrivateBroker`:
    its own name, ports, folders) with the cluster's cookie, that can join, crash and return."""

    @property
    def address(self) -> str:
        """``host:port`` as the services log the node they use."""
        return f"127.0.0.1:{self.port}"

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

    def restart(self) -> None:
        """Boots the node again after :meth:`kill`; it rejoins its cluster by itself."""
        self.boot()


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
            ClusterNode(base / f"node{n}", f"{prefix}-{n}@localhost", cookie=cookie)
            for n in range(1, size + 1)
        ]
        cluster = cls(nodes)
        try:
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

    def home_of(self, queue: str) -> ClusterNode:
        """The one node a classic queue lives on: the node listing it among its ``--local``
        queues (3.10 shows a classic queue's process id without its node, and no leader)."""
        for node in self.nodes:
            local = json.loads(node.ctl("list_queues", "--local", "name", "--formatter", "json"))
            if any(q["name"] == queue for q in local):
                return node
        raise LookupError(f"no node holds {queue}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
