"""The RabbitMQ users of deploy/rabbitmq do what the script claims, on the real local broker.

A vhost of its own gets the topology from the generated definitions (imported
with ``rabbitmqctl import_definitions``), then ``create-users.sh`` makes the
users under a unique prefix; each user connects and tries what it must and
must not be able to do. Finally the services run as those users with
``VCS_DECLARE_TOPOLOGY=false`` and deliver a request end to end, while the
integration user watches the events from its own queue.

These tests never skip silently: without ``rabbitmqctl`` (``make test`` installs
RabbitMQ through scripts/ensure-rabbitmq.sh) they fail, unless
``VCS_ALLOW_NO_RABBITMQCTL=1`` says on purpose that this machine cannot run them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import pytest_asyncio
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.exceptions import ChannelAccessRefused

from tests.support.auth import codec, national_operator_token
from tests.support.broker_users import (
    INTEGRATION,
    Broker,
    drop_databases,
    least_privilege_vhost,
    require_rabbitmqctl,
)
from tests.support.paths import ROOT
from tests.support.requests import request_body
from tests.support.services import StartServices
from tests.support.tap import EventTap, take_from
from tests.support.waiting import eventually
from vcs_desk.deadletters import DeadLetters
from vcs_desk.feed_stream import StreamReader
from vcs_shared.broker import (
    ORIGINAL_ROUTING_KEY_HEADER,
    check_topology,
    declare_topology,
)
from vcs_shared.scope import Scope
from vcs_shared.topology import CONSUMERS
from vcs_tools.rabbitmq import (
    SERVICE_USERS,
)

NOT_DESK = tuple(service for service in CONSUMERS if service != "desk")
"""The consuming services but the desk, which alone reads the feed and the audit queue."""

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def least_privilege() -> AsyncIterator[Broker]:
    require_rabbitmqctl()
    async with least_privilege_vhost(ROOT) as broker:
        yield broker


@pytest.fixture
async def connect(least_privilege: Broker) -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    opened: list[AbstractRobustConnection] = []

    async def open_as(user: str) -> AbstractRobustConnection:
        connection = await aio_pika.connect_robust(least_privilege.urls[user])
        opened.append(connection)
        return connection

    try:
        yield open_as
    finally:
        for connection in opened:
            await connection.close()


async def refused(
    connection: AbstractRobustConnection, attempt: Callable[[AbstractChannel], Awaitable[Any]]
) -> bool:
    """Whether the broker refuses ``attempt`` (ACCESS_REFUSED closes that channel only)."""
    channel = await connection.channel(publisher_confirms=True)
    try:
        await attempt(channel)
    except ChannelAccessRefused:
        return True
    await channel.close()
    return False


async def consume_briefly(queue: AbstractQueue) -> None:
    """Subscribes and unsubscribes: reading a queue the way its service does (a quorum queue
    with a single active consumer refuses ``basic.get``)."""

    async def leave(message: AbstractIncomingMessage) -> None:
        return None

    await queue.cancel(await queue.consume(leave))


def message(routing_key: str) -> aio_pika.Message:
    return aio_pika.Message(b"{}", message_id=routing_key)


async def test_the_imported_definitions_match_what_the_code_declares(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]]
) -> None:
    """Re-declaring with the code's arguments succeeds only if the definitions agree with them
    (RabbitMQ answers PRECONDITION_FAILED to any difference)."""
    guest = await connect("guest")
    channel = await guest.channel()
    await declare_topology(channel, least_privilege.topology)


async def test_each_service_does_its_job_without_any_configure_permission(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]]
) -> None:
    topology = least_privilege.topology
    for service in CONSUMERS:
        connection = await connect(service)
        channel = await connection.channel()
        await check_topology(channel, topology, service)
        for name in topology.consumed_queues(service):  # each of the allocator's shards
            await consume_briefly(await channel.get_queue(name, ensure=False))

        assert await refused(connection, lambda ch: declare_topology(ch, topology))
        other = next(s for s in CONSUMERS if s != service)

        async def read_other(ch: AbstractChannel, other: str = other) -> None:
            await consume_briefly(
                await ch.get_queue(topology.consumed_queues(other)[0], ensure=False)
            )

        assert await refused(connection, read_other), f"{service} read {other}'s queue"


async def test_services_publish_only_their_own_events_and_only_to_the_events_exchange(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]]
) -> None:
    topology = least_privilege.topology
    own_event = {
        "intake": "request.submitted.47.4701",
        "allocator": "room.assigned.47.4701",
        "notifier": "credentials.delivered.47.4701",
    }
    for service, key in own_event.items():
        connection = await connect(service)

        assert not await refused(connection, publishing(key, topology.exchange))
        for forged in set(own_event.values()) - {key}:
            assert await refused(connection, publishing(forged, topology.exchange)), (
                f"{service} published {forged}"
            )
        assert await refused(connection, publishing(key, "amq.topic"))


@pytest.mark.parametrize("user", [*SERVICE_USERS, INTEGRATION])
async def test_nobody_may_publish_through_the_default_exchange(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]], user: str
) -> None:
    """Above all the internet-facing intake: the default exchange reaches every queue by
    name, so writing to it would put any message straight into vcs.notifier."""
    topology = least_privilege.topology
    connection = await connect(user)

    async def straight_into_the_notifier(channel: AbstractChannel) -> None:
        await channel.default_exchange.publish(
            message("room.assigned.47.4701"), routing_key=topology.queue("notifier")
        )

    assert await refused(connection, straight_into_the_notifier)
    guest = await connect("guest")  # the same publish is fine for a user allowed to
    assert not await refused(guest, straight_into_the_notifier)
    drained = await (await guest.channel()).get_queue(topology.queue("notifier"))
    await drained.purge()


async def test_the_desk_replays_dead_letters_publishes_its_support_events_and_nothing_else(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]]
) -> None:
    topology = least_privilege.topology
    guest = await (await connect("guest")).channel(publisher_confirms=True)
    dead = await guest.get_exchange(topology.dead_exchange)
    await dead.publish(
        aio_pika.Message(
            b"{}",
            message_id="dead-1",
            headers={ORIGINAL_ROUTING_KEY_HEADER: "request.submitted.47.4701"},
        ),
        routing_key=topology.queue("allocator"),
    )
    desk = await connect("desk")
    everywhere = Scope.of(codec.verify(national_operator_token()))

    [listed] = await DeadLetters(desk, topology).peek("allocator", everywhere)
    result = await DeadLetters(desk, topology).replay("allocator", everywhere, include_poison=True)

    assert listed.message_id == "dead-1"
    assert result.replayed == ["dead-1"]
    back = await take_from(await guest.get_queue(topology.queue_for("allocator", "47")))
    assert back.routing_key == "request.submitted.47.4701"
    for own in ("support.requested.47.4701", "support.claimed.47.4701", "support.done.47.4701"):
        assert not await refused(desk, publishing(own, topology.exchange)), own

    async def read_a_service_queue(ch: AbstractChannel) -> None:
        queue = await ch.get_queue(topology.queue("notifier"), ensure=False)
        await queue.get(fail=False)

    for attempt in (
        read_a_service_queue,
        publishing("room.assigned.47.4701", topology.exchange),
        lambda ch: declare_topology(ch, topology),
    ):  # <ns>.dead it may write, as every consumer does with its poison (its queue <ns>.desk)
        assert await refused(desk, attempt)


async def test_only_the_desk_reads_the_feed_stream(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]]
) -> None:
    topology = least_privilege.topology
    guest = await (await connect("guest")).channel(publisher_confirms=True)
    exchange = await guest.get_exchange(topology.exchange)
    await exchange.publish(
        message("request.submitted.47.4701"), routing_key="request.submitted.47.4701"
    )

    seen: list[str | None] = []
    async with await StreamReader.open(
        await connect("desk"), topology.feed_stream, "first"
    ) as feed:  # from the start: other tests of this vhost published before (the desk's own)
        while "request.submitted.47.4701" not in seen and len(seen) < 20:
            read = await feed.next(within=10)
            assert read is not None, f"only {seen} in the feed"
            seen.append(read.routing_key)
    assert "request.submitted.47.4701" in seen

    async def ignore(message: AbstractIncomingMessage) -> None:
        await message.ack()

    async def reading_the_feed(channel: AbstractChannel) -> None:
        await channel.set_qos(prefetch_count=10)
        stream = await channel.get_queue(topology.feed_stream, ensure=False)
        await stream.consume(ignore, arguments={"x-stream-offset": "first"})

    for user in (*NOT_DESK, INTEGRATION):
        assert await refused(await connect(user), reading_the_feed), f"{user} read the feed"


async def test_services_publish_audit_entries_that_only_the_desk_reads(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]]
) -> None:
    """Audit entries name people: they go to the internal audit exchange, which every service
    (the desk too) may publish entries to (and nothing else), and only the desk reads; an
    integration can neither read the desk's audit queue nor bind a queue to the exchange."""
    topology = least_privilege.topology
    entry = "audit.recorded.sign_in"
    for service in SERVICE_USERS:
        connection = await connect(service)
        assert not await refused(connection, publishing(entry, topology.audit_exchange))
        assert await refused(
            connection, publishing("room.assigned.47.4701", topology.audit_exchange)
        ), f"{service} put an event on the audit exchange"

    async def reading_the_audit_queue(channel: AbstractChannel) -> None:
        queue = await channel.get_queue(topology.audit_queue, ensure=False)
        await queue.get(fail=False)

    desk = await connect("desk")
    assert not await refused(desk, reading_the_audit_queue)
    guest = await (await connect("guest")).channel()
    taken = await (await guest.get_queue(topology.audit_queue)).purge()
    assert taken.message_count == len(SERVICE_USERS)  # exactly the entries published above
    for user in (*NOT_DESK, INTEGRATION):
        assert await refused(await connect(user), reading_the_audit_queue), user

    async def binding_to_the_audit_exchange(channel: AbstractChannel) -> None:
        queue = await channel.declare_queue("integration.audit", auto_delete=True)
        await queue.bind(topology.audit_exchange, routing_key="#")

    assert await refused(await connect(INTEGRATION), binding_to_the_audit_exchange)


def publishing(routing_key: str, exchange: str) -> Callable[[AbstractChannel], Awaitable[None]]:
    async def publish(channel: AbstractChannel) -> None:
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(message(routing_key), routing_key=routing_key)

    return publish


async def test_the_integration_user_binds_and_reads_its_own_queues_and_nothing_else(
    least_privilege: Broker, connect: Callable[[str], Awaitable[Any]]
) -> None:
    topology = least_privilege.topology
    integration = await connect(INTEGRATION)
    channel = await integration.channel()
    tap = await EventTap.bind(channel, topology.exchange, "#.47.*")
    named = await channel.declare_queue("integration.dashboard", auto_delete=True)
    await named.bind(topology.exchange, routing_key="room.assigned.#")

    intake = await (await connect("intake")).channel(publisher_confirms=True)
    events = await intake.get_exchange(topology.exchange, ensure=False)
    await events.publish(message("request.submitted.47.4701"), "request.submitted.47.4701")
    [seen] = await tap.wait_for("request.submitted")
    assert seen.routing_key == "request.submitted.47.4701"

    async def bind_service_queue(ch: AbstractChannel) -> None:
        queue = await ch.get_queue(topology.consumed_queues("allocator")[0], ensure=False)
        await queue.bind(topology.exchange, routing_key="#")

    async def read_service_queue(ch: AbstractChannel) -> None:
        await consume_briefly(
            await ch.get_queue(topology.consumed_queues("allocator")[0], ensure=False)
        )

    async def bind_to_dead_letters(ch: AbstractChannel) -> None:
        queue = await ch.declare_queue(exclusive=True)
        await queue.bind(topology.dead_exchange, routing_key=topology.queue("allocator"))

    async def read_dead_letters(ch: AbstractChannel) -> None:
        queue = await ch.get_queue(topology.dead_letter_queue("allocator"), ensure=False)
        await queue.get(fail=False)

    async def publish_an_event(ch: AbstractChannel) -> None:
        target = await ch.get_exchange(topology.exchange, ensure=False)
        await target.publish(message("room.assigned.47.4701"), "room.assigned.47.4701")

    async def declare_in_the_namespace(ch: AbstractChannel) -> None:
        await ch.declare_queue(f"{topology.namespace}.sneaky", auto_delete=True)

    for attempt in (
        bind_service_queue,
        read_service_queue,
        bind_to_dead_letters,
        read_dead_letters,
        publish_an_event,
        publishing("request.submitted.47.4701", topology.replay_exchange),
        declare_in_the_namespace,
    ):
        assert await refused(integration, attempt), getattr(attempt, "__name__", attempt)


async def test_the_services_deliver_a_request_running_as_their_least_privilege_users(
    least_privilege: Broker,
    connect: Callable[[str], Awaitable[Any]],
    start_services: StartServices,
    http: httpx.AsyncClient,
    mongodb_url: str,
) -> None:
    integration = await connect(INTEGRATION)
    tap = await EventTap.bind(await integration.channel(), least_privilege.topology.exchange, "#")
    try:
        for service in SERVICE_USERS:
            await start_services(service, extra_env=least_privilege.service_env(service))

        response = await http.post("/v1/requests", json=request_body("4701"))
        assert response.status_code == 202
        request_id = response.json()["request_id"]
        dead_letters = await http.get("/v1/admin/dead-letters")  # the desk, as its own user
        assert dead_letters.status_code == 200, dead_letters.text
        assert {letter["service"] for letter in dead_letters.json()} <= set(CONSUMERS)

        async def delivered() -> bool:
            view = (await http.get(f"/v1/requests/{request_id}")).json()
            return bool(view["status"] == "delivered")

        await eventually(delivered, timeout=30, what="delivered as least-privilege users")
        for kind in ("request.submitted", "room.assigned", "credentials.delivered"):
            [event] = await tap.wait_for(kind)
            assert event.cloudevent["subject"] == request_id
    finally:
        await drop_databases(mongodb_url, least_privilege.namespace)


@pytest.mark.parametrize(
    ("opt_out", "outcome"), [(None, "1 error"), ("1", "1 skipped")], ids=["fails", "opted-out"]
)
async def test_without_rabbitmqctl_these_tests_fail_unless_skipping_is_asked_for(
    opt_out: str | None, outcome: str
) -> None:
    """CI must not pass with the permissions untested because rabbitmqctl was missing."""
    env = {k: v for k, v in os.environ.items() if k != "VCS_ALLOW_NO_RABBITMQCTL"}
    env["PATH"] = os.pathsep.join(
        folder
        for folder in env.get("PATH", "").split(os.pathsep)
        if not (Path(folder) / "rabbitmqctl").exists()
    )
    if opt_out is not None:
        env["VCS_ALLOW_NO_RABBITMQCTL"] = opt_out
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "pytest",
            f"{__file__}::test_the_imported_definitions_match_what_the_code_declares",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert outcome in done.stdout, done.stdout[-2000:]
    if opt_out is None:
        assert done.returncode != 0
        assert "rabbitmqctl is not installed" in done.stdout
