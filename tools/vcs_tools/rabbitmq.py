"""RabbitMQ least privilege: the predeclared topology and the per-service users.

* :func:`definitions` renders the topology defined in :mod:`vcs_shared.topology`
  (exchanges, quorum queues with their delivery limit and dead-lettering, DLQs,
  bindings) as RabbitMQ definitions; ``deploy/rabbitmq/definitions.json`` is its output for
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

from vcs_shared.broker import upgrade_topology
from vcs_shared.topology import CONSUMERS, Topology

SERVICE_USERS = tuple(CONSUMERS)
"""Every service connects as its own user; each consumes its own queue (the desk also reads the
dead letters, the feed stream and the audit queue)."""
CREATE_USERS_SCRIPT = Path("deploy") / "rabbitmq" / "create-users.sh"


def password_variable(service: str) -> str:
    """The environment variable ``create-users.sh`` takes this service's password from."""
    return f"VCS_RABBITMQ_{service.upper()}_PASSWORD"


def definitions(namespace: str = "vcs", vhost: str = "/") -> dict[str, Any]:
    """The topology as RabbitMQ definitions (no users: their passwords are not in the repo)."""
    definition = Topology(namespace).definition()
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": exchange.name,
                "vhost": vhost,
                "type": exchange.kind,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for exchange in definition.exchanges
        ],
        "queues": [
            {
                "name": queue.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": queue.arguments,
            }
            for queue in definition.queues
        ],
        "bindings": [
            {
                "source": binding.exchange,
                "vhost": vhost,
                "destination": binding.queue,
                "destination_type": "queue",
                "routing_key": binding.routing_key,
                "arguments": dict(binding.arguments),
            }
            for binding in definition.bindings
        ],
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
        await upgrade_topology(connection, Topology(namespace))
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
