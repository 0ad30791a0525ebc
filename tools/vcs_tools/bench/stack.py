"""One benchmark stack: the services of ``make run`` in a namespace of their own, and a tap.

The store and the SMTP sink are shared by every stack of a run; each stack
gets its own namespace (exchange, queues, databases), the national pool loaded
into its allocator database before the allocator starts, and N allocator
processes. Leaving the context stops the services and deletes the namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from vcs_allocator.domain import PoolEntry
from vcs_allocator.store import MongoReservationStore
from vcs_shared.broker import Topology, connect, declare_topology, delete_topology
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.store import database_name, make_client
from vcs_tools.devstack import SERVICES, ServiceProcess, free_port, internal_apis, service_env

FINAL_EVENTS = ("credentials.delivered", "credentials.failed", "request.rejected")
READY_TIMEOUT = 90.0


@dataclass(frozen=True, slots=True)
class StackConfig:
    """What every stack of one run shares."""

    amqp_url: str
    mongodb_url: str
    credentials_keys: str
    jwt_secret: str
    smtp_port: int
    log_dir: Path


@dataclass
class Tap:
    """Arrival time (``perf_counter``) of each event kind per request id, from a private queue."""

    seen: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    final_ids: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        arrived = time.perf_counter()
        kind = (message.routing_key or "").rsplit(".", 2)[0]
        request_id = json.loads(message.body).get("subject", "")
        stamps = self.seen[request_id]
        if kind in stamps:
            return  # a duplicate publish (outbox sweep): the first arrival counts
        stamps[kind] = arrived
        if kind in FINAL_EVENTS:
            self.final_ids.add(request_id)
            self.changed.set()

    def final_at(self, request_id: str) -> float | None:
        stamps = self.seen.get(request_id, {})
        return next((stamps[k] for k in FINAL_EVENTS if k in stamps), None)

    async def wait_finals(self, ids: Sequence[str], *, stall_timeout: float) -> list[str]:
        """Waits until every id is final, or nothing became final for ``stall_timeout`` seconds.

        Returns the ids that never became final (lost). Each wake-up costs one set
        difference, not a look at every id: the load client shares the services' cores.
        """
        wanted = set(ids)
        while True:
            missing = list(wanted - self.final_ids)
            if not missing:
                return []
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=stall_timeout)
            except TimeoutError:
                return missing


@dataclass
class Stack:
    namespace: str
    intake_url: str
    processes: list[ServiceProcess]
    tap: Tap
    metrics_ports: list[int] = field(default_factory=list)

    async def store_commands(self) -> Counter[tuple[str, str, str]]:
        """Store commands the stack's processes have sent so far (their ``/metrics``), by
        (process, command, collection), without the reachability pings, which are no work of a
        request."""
        counts: Counter[tuple[str, str, str]] = Counter()
        async for label, sample in self._samples("vcs_store_commands_total"):
            command = sample.labels.get("command", "")
            if command != "ping":
                counts[label, command, sample.labels.get("collection", "")] += int(sample.value)
        return counts

    async def claim_races_lost(self) -> int:
        """Claims the allocators lost at the slots' unique index so far (their ``/metrics``)."""
        return sum(
            [int(sample.value) async for _, sample in self._samples("vcs_claim_races_lost_total")]
        )

    async def _samples(self, name: str) -> AsyncIterator[tuple[str, Sample]]:
        """The samples called ``name`` on each process's ``/metrics``, with its label."""
        async with httpx.AsyncClient(timeout=10) as client:
            for label, port in zip(self.labels(), self.metrics_ports, strict=True):
                answer = await client.get(f"http://127.0.0.1:{port}/metrics")
                for family in text_string_to_metric_families(answer.text):
                    for sample in family.samples:
                        if sample.name == name:
                            yield label, sample

    def labels(self) -> list[str]:
        """One name per service process: ``intake``, ``allocator0``…, ``notifier``."""
        return [
            p.name if p.name != "allocator" else f"allocator{i - 1}"
            for i, p in enumerate(self.processes)
        ]

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM (the kernel's peak resident set) of each service process, in MiB."""
        return {
            label: _vm_hwm_kib(process.pid) / 1024
            for label, process in zip(self.labels(), self.processes, strict=True)
        }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@asynccontextmanager
async def stack(
    config: StackConfig,
    rooms: Sequence[PoolEntry],
    *,
    allocators: int = 1,
    label: str = "",
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """Starts intake, ``allocators`` allocators and the notifier in a fresh namespace."""
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    topology = Topology(namespace)
    connection: AbstractRobustConnection = await connect(config.amqp_url, name="bench")
    channel = await connection.channel()
    await declare_topology(channel, topology)
    tap = Tap()
    tap_queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await tap_queue.bind(topology.exchange, routing_key="#")
    await tap_queue.consume(tap.on_message, no_ack=True)

    mongo = make_client(config.mongodb_url, app_name="bench")
    store = MongoReservationStore(mongo[database_name(namespace, "allocator")])
    await store.ensure_indexes()
    sealer = CredentialsSealer(config.credentials_keys)
    await store.replace_rooms([room.sealed(sealer) for room in rooms])

    port = free_port()
    logs = config.log_dir / (label or namespace)
    env = service_env(
        amqp_url=config.amqp_url,
        mongodb_url=config.mongodb_url,
        credentials_keys=config.credentials_keys,
        jwt_secret=config.jwt_secret,
        namespace=namespace,
        smtp_port=config.smtp_port,
        intake_port=port,
        extra={
            **internal_apis(),
            "VCS_SEND_JOURNAL": logs / "sent-mails.jsonl",
            **(extra_env or {}),
        },
    )
    names = ["intake", *["allocator"] * allocators, "notifier"]
    ports = [free_port() for _ in names]
    processes = [
        ServiceProcess(name, {**env, "VCS_METRICS_PORT": str(port)}, logs / f"{name}-{i}.log")
        for i, (name, port) in enumerate(zip(names, ports, strict=True))
    ]
    try:
        for process in processes:
            process.start()
        url = f"http://127.0.0.1:{port}"
        await asyncio.gather(*(p.wait_ready(READY_TIMEOUT) for p in processes))
        yield Stack(namespace, url, processes, tap, ports)
    finally:
        for process in reversed(processes):
            process.stop()
        cleanup = await connection.channel()
        await delete_topology(cleanup, topology)
        await connection.close()
        for service in SERVICES:
            await mongo.drop_database(database_name(namespace, service))
        await mongo.close()
