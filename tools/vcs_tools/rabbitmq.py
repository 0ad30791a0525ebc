"""RabbitMQ least privilege: the predeclared topology and the per-service users.

* :func:`definitions` renders the topology of :mod:`vcs_shared.broker` (exchanges,
  quorum queues with their delivery limit and dead-lettering, DLQs, bindings) as
  RabbitMQ definitions; ``deploy/rabbitmq/definitions.json`` is its output for
  the namespace ``vcs`` (``python -m vcs_tools.rabbitmq > deploy/rabbitmq/definitions.json``),
  and a unit test keeps the two equal. With the topology predeclared, services run
  with ``VCS_DECLARE_TOPOLOGY=false`` and need no configure permission.
* ``deploy/rabbitmq/create-users.sh`` creates the users and their permissions;
  :func:`local_service_urls` runs it for ``make run`` when this machine's broker
  allows (root, ``rabbitmqctl`` present), so the local stack runs as those users too.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika

from vcs_shared.broker import (
    DELIVERY_LIMIT,
    SUBSCRIPTIONS,
    Topology,
    declare_topology,
    replay_binding,
)

SERVICE_USERS = (*SUBSCRIPTIONS, "desk")
"""Every service connects as its own user: the three consumers, and the desk (dead letters)."""
CREATE_USERS_SCRIPT = Path("deploy") / "rabbitmq" / "create-users.sh"


def password_variable(service: str) -> str:
    """The environment variable ``create-users.sh`` takes this service's password from."""
    return f"VCS_RABBITMQ_{service.upper()}_PASSWORD"


def definitions(namespace: str = "vcs", vhost: str = "/") -> dict[str, Any]:
    """The topology as RabbitMQ definitions (no users: their passwords are not in the repo)."""
    topology = Topology(namespace)
    exchanges = [
        _exchange(topology.exchange, "topic", vhost),
        _exchange(topology.dead_exchange, "direct", vhost),
        _exchange(topology.replay_exchange, "headers", vhost),
    ]
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for service, keys in SUBSCRIPTIONS.items():
        queues.append(
            _queue(
                topology.queue(service),
                vhost,
                {
                    "x-queue-type": "quorum",
                    "x-delivery-limit": DELIVERY_LIMIT,
                    "x-dead-letter-exchange": topology.dead_exchange,
                    "x-dead-letter-routing-key": topology.queue(service),
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
        )
        queues.append(
            _queue(topology.dead_letter_queue(service), vhost, {"x-queue-type": "classic"})
        )
        bindings.extend(
            _binding(topology.exchange, topology.queue(service), k, vhost) for k in keys
        )
        bindings.append(
            _binding(
                topology.replay_exchange,
                topology.queue(service),
                "",
                vhost,
                replay_binding(service),
            )
        )
        bindings.append(
            _binding(
                topology.dead_exchange,
                topology.dead_letter_queue(service),
                topology.queue(service),
                vhost,
            )
        )
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    }


def _exchange(name: str, kind: str, vhost: str) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "type": kind,
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }


def _queue(name: str, vhost: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "durable": True,
        "auto_delete": False,
        "arguments": arguments,
    }


def _binding(
    source: str, queue: str, key: str, vhost: str, arguments: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": dict(arguments or {}),
    }


def amqp_url(user: str, password: str, *, host: str = "127.0.0.1", vhost: str = "/") -> str:
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"amqp://{credentials}@{host}:5672/{quote(vhost, safe='')}"


def create_users(
    root: Path,
    passwords: Mapping[str, str],
    *,
    namespace: str,
    vhost: str = "/",
    user_prefix: str = "",
) -> None:
    """Runs ``create-users.sh`` (passwords through the environment, not the command line)."""
    env = {
        **os.environ,
        "VCS_NAMESPACE": namespace,
        "VCS_RABBITMQ_VHOST": vhost,
        "VCS_RABBITMQ_USER_PREFIX": user_prefix,
        **passwords,
    }
    subprocess.run(
        [str(root / CREATE_USERS_SCRIPT)], env=env, check=True, capture_output=True, timeout=120
    )


async def _connects(url: str) -> bool:
    try:
        connection = await aio_pika.connect(url, timeout=5)
    except (aio_pika.exceptions.AMQPError, OSError, TimeoutError):
        return False
    await connection.close()
    return True


async def _declare(admin_url: str, namespace: str) -> None:
    connection = await aio_pika.connect(admin_url, timeout=10)
    try:
        await declare_topology(await connection.channel(), Topology(namespace))
    finally:
        await connection.close()


def local_service_urls(
    root: Path, admin_url: str, namespace: str, passwords: Mapping[str, str]
) -> dict[str, str] | None:
    """Per-service AMQP URLs for ``make run``, or ``None`` when this broker cannot have them.

    The topology is declared with the admin (guest) account first, so the services can
    run with ``VCS_DECLARE_TOPOLOGY=false``. The users are (re)created only when one of
    them cannot log in, which needs ``rabbitmqctl`` and root on this machine; a failing
    script raises ``RuntimeError`` with its last words.
    """
    urls = {s: amqp_url(s, passwords[password_variable(s)]) for s in SERVICE_USERS}

    async def all_connect() -> bool:
        results = await asyncio.gather(*(_connects(url) for url in urls.values()))
        return all(results)

    asyncio.run(_declare(admin_url, namespace))
    if asyncio.run(all_connect()):
        return urls
    if shutil.which("rabbitmqctl") is None or os.geteuid() != 0:
        return None
    try:
        create_users(root, passwords, namespace=namespace)
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"create-users.sh failed: {lines[-1] if lines else exc}") from exc
    return urls if asyncio.run(all_connect()) else None


def main() -> None:
    json.dump(definitions(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
