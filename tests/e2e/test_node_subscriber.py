"""examples/node-subscriber, run as an integration runs it: Node.js and amqplib, the read-only
integration user of deploy/rabbitmq, queues of its own, and a real assignment made by the
services running as their own least-privilege users."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from tests.support.broker_users import (
    INTEGRATION,
    Broker,
    drop_databases,
    least_privilege_vhost,
    require_rabbitmqctl,
)
from tests.support.node import NODE_SUBSCRIBER, node, with_dependencies
from tests.support.paths import ROOT
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap, open_channel
from tests.support.waiting import eventually
from vcs_tools.rabbitmq import SERVICE_USERS

pytestmark = pytest.mark.e2e


@dataclass
class NodeSubscriber:
    """``node subscriber.js`` as a child process, its output collected line by line."""

    process: asyncio.subprocess.Process
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, env: dict[str, str]) -> NodeSubscriber:
        project = with_dependencies(NODE_SUBSCRIBER)
        process = await asyncio.create_subprocess_exec(
            node(),
            str(project / "subscriber.js"),
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        subscriber = cls(process)
        assert process.stdout is not None
        assert process.stderr is not None
        subscriber.readers = [
            asyncio.create_task(_collect(process.stdout, subscriber.out)),
            asyncio.create_task(_collect(process.stderr, subscriber.err)),
        ]
        return subscriber

    async def listening(self) -> str:
        """The queue it consumes, once it says it listens."""

        async def said() -> str | None:
            if self.process.returncode is not None:
                raise AssertionError(f"subscriber exited: {self.err}")
            return next((line for line in self.err if line.startswith("listening:")), None)

        line = await eventually(said, timeout=20, what="the subscriber listening")
        return line.rsplit(" -> ", 1)[1]

    async def lines_about(self, request_id: str) -> list[str]:
        async def printed() -> list[str]:
            return [line for line in self.out if f" request={request_id} " in line]

        return await eventually(printed, timeout=20, what=f"a line about {request_id}")

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), timeout=20)
        await asyncio.gather(*self.readers)
        return code


async def _collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    async for raw in stream:
        lines.append(raw.decode().rstrip("\n"))


@pytest_asyncio.fixture
async def deployment(mongodb_url: str) -> AsyncIterator[Broker]:
    """A vhost of this test's own, with the users ``create-users.sh`` makes in a deployment."""
    require_rabbitmqctl()
    async with least_privilege_vhost(ROOT) as broker:
        try:
            yield broker
        finally:
            await drop_databases(mongodb_url, broker.namespace)


async def test_the_node_subscriber_prints_a_real_assignment_as_the_integration_user(
    deployment: Broker, start_services: StartServices, http: httpx.AsyncClient
) -> None:
    for service in SERVICE_USERS:
        await start_services(service, extra_env=deployment.service_env(service))
    connection, channel = await open_channel(deployment.urls["guest"])
    tap = await EventTap.bind(channel, deployment.topology.exchange, "room.assigned.#")
    settings = {"AMQP_URL": deployment.urls[INTEGRATION], "EXCHANGE": deployment.topology.exchange}
    durable_queue = f"integration.node-test-{uuid.uuid4().hex[:8]}"
    server_named = await NodeSubscriber.start(settings)
    named = await NodeSubscriber.start({**settings, "QUEUE": durable_queue})
    try:
        assert (await server_named.listening()).startswith("amq.gen-")
        assert await named.listening() == durable_queue

        request_id = (await http.post("/v1/requests", json=request_body("4701"))).json()[
            "request_id"
        ]
        view = await wait_status(http, request_id, "delivered")
        [assigned] = await tap.wait_for("room.assigned")
        expected = assignment_line(assigned.cloudevent)
        assert await server_named.lines_about(request_id) == [expected]
        assert await named.lines_about(request_id) == [expected]
    finally:
        codes = [await server_named.stop(), await named.stop()]
        await connection.close()

    assert codes == [0, 0], server_named.err + named.err
    assert server_named.out == named.out == [expected]  # once each, and nothing else
    for subscriber in (server_named, named):
        assert [line for line in subscriber.err if not line.startswith("listening:")] == []
    assert view["assignment"]["meeting_id"] in expected
    secrets = (
        view["assignment"]["passcode"],
        assigned.cloudevent["data"]["sealed_credentials"],
        urlsplit(deployment.urls[INTEGRATION]).password or "no password?",
    )
    for output in (*server_named.out, *server_named.err, *named.out, *named.err):
        assert not any(secret in output for secret in secrets), output
        assert "pwd=" not in output


def assignment_line(event: dict[str, Any]) -> str:
    """What the README says the subscriber prints for a room.assigned CloudEvent."""
    data = event["data"]
    return (
        f"room.assigned request={event['subject']} office={data['district_code']} "
        f"meeting_id={data['meeting_id']} capacity={data['capacity']} pool={data['pool']} "
        f"starts_at={data['starts_at']} ends_at={data['ends_at']}"
    )
