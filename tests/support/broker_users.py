"""A vhost of the test's own with the deployment's topology and least-privilege users.

The topology comes from the generated definitions (imported with ``rabbitmqctl
import_definitions``), the users from ``deploy/rabbitmq/create-users.sh`` under a
unique prefix, so what runs as them is what runs in a deployment. Everything is
removed on the way out. Needs ``rabbitmqctl`` (and the right to use it) on this machine:
without it the tests that use this fail rather than skip silently, unless
``VCS_ALLOW_NO_RABBITMQCTL=1`` says on purpose that this machine cannot run them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from tests.support.waiting import eventually
from vcs_desk.deadletters import DeadLetters
from vcs_shared.broker import Topology, check_topology
from vcs_shared.store import database_name
from vcs_shared.topology import CONSUMERS
from vcs_tools.rabbitmq import SERVICE_USERS, amqp_url, create_users, definitions, password_variable

INTEGRATION = "integration-readonly"
INTEGRATION_PASSWORD = "VCS_RABBITMQ_INTEGRATION_PASSWORD"


async def rabbitmqctl(*args: str, stdin: str | None = None, check: bool = True) -> None:
    await asyncio.to_thread(
        subprocess.run,
        ["rabbitmqctl", "-q", *args],
        input=stdin,
        text=True,
        check=check,
        capture_output=True,
    )


@dataclass(frozen=True)
class Broker:
    """A vhost with the predeclared topology and the least-privilege users.

    ``urls`` maps each service, ``integration-readonly`` and ``guest`` (all rights on the
    vhost, for the test's own setup) to an AMQP URL of that user on the vhost."""

    vhost: str
    namespace: str
    urls: dict[str, str]

    @property
    def topology(self) -> Topology:
        return Topology(self.namespace)

    def service_env(self, service: str) -> dict[str, str]:
        """What a service needs to run here as its own user, on the predeclared topology."""
        return {
            "VCS_AMQP_URL": self.urls[service],
            "VCS_NAMESPACE": self.namespace,
            "VCS_DECLARE_TOPOLOGY": "false",
        }


def require_rabbitmqctl() -> None:
    """Fails the test when ``rabbitmqctl`` is missing (skips only when told to)."""
    if shutil.which("rabbitmqctl") is not None:
        return
    if os.environ.get("VCS_ALLOW_NO_RABBITMQCTL") == "1":
        pytest.skip("rabbitmqctl is not installed and VCS_ALLOW_NO_RABBITMQCTL=1")
    pytest.fail(
        "rabbitmqctl is not installed, so the broker permissions cannot be tested: run "
        "scripts/ensure-rabbitmq.sh (make test does), or set VCS_ALLOW_NO_RABBITMQCTL=1 "
        "to skip these tests on purpose"
    )


async def _imported(url: str, topology: Topology) -> None:
    """Waits for the definition import, which RabbitMQ runs asynchronously."""

    async def declared() -> bool:
        connection = await aio_pika.connect(url)
        try:
            for service in CONSUMERS:
                await check_topology(await connection.channel(), topology, service)
            await DeadLetters(connection, topology).check()
        except aio_pika.exceptions.ChannelClosed:
            return False
        finally:
            await connection.close()
        return True

    await eventually(declared, timeout=30, what="definitions imported")


@asynccontextmanager
async def least_privilege_vhost(root: Path) -> AsyncIterator[Broker]:
    suffix = uuid.uuid4().hex[:10]
    vhost, namespace, prefix = f"vcs-perm-{suffix}", f"t{suffix}", f"t{suffix}-"
    passwords = {password_variable(s): secrets.token_urlsafe(16) for s in SERVICE_USERS}
    passwords[INTEGRATION_PASSWORD] = secrets.token_urlsafe(16)
    users = [f"{prefix}{s}" for s in (*SERVICE_USERS, INTEGRATION)]
    await rabbitmqctl("add_vhost", vhost)
    try:
        await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        await rabbitmqctl("import_definitions", stdin=json.dumps(definitions(namespace, vhost)))
        await asyncio.to_thread(
            create_users, root, passwords, namespace=namespace, vhost=vhost, user_prefix=prefix
        )
        urls = {
            s: amqp_url(f"{prefix}{s}", passwords[password_variable(s)], vhost=vhost)
            for s in SERVICE_USERS
        }
        urls[INTEGRATION] = amqp_url(
            f"{prefix}{INTEGRATION}", passwords[INTEGRATION_PASSWORD], vhost=vhost
        )
        urls["guest"] = amqp_url("guest", "guest", vhost=vhost)
        await _imported(urls["guest"], Topology(namespace))
        yield Broker(vhost, namespace, urls)
    finally:
        await rabbitmqctl("delete_vhost", vhost)
        await asyncio.gather(*(rabbitmqctl("delete_user", user, check=False) for user in users))


async def drop_databases(mongodb_url: str, namespace: str) -> None:
    """The services' databases of ``namespace`` (services that ran in a vhost of a test's own)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        for service in SERVICE_USERS:
            await client.drop_database(database_name(namespace, service))
    finally:
        await client.close()
