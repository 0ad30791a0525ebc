"""An allocator SIGKILLed in the middle of a batch: the broker redelivers what it held unacked
to the restarted allocator, and every request is decided once, with one reservation and
one room.assigned, whatever step each message had reached when the process died (before
its claim, between its slots and its decision, before its ack).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import StartServices
from tests.support.faults import (
    count_assignments,
    find_duplicates,
    spread_request,
    submit_all,
    wait_all_final,
)
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_shared.broker import Topology
from vcs_shared.store import database_name
from vcs_tools.devstack import ServiceProcess, SmtpSink

pytestmark = pytest.mark.e2e

Document = dict[str, Any]
BATCH = 60


async def test_a_killed_allocator_s_unacked_messages_are_redelivered_and_handled_once(
    start_services: StartServices,
    http: httpx.AsyncClient,
    tap: EventTap,
    broker: Any,
    topology: Topology,
    mongo: AsyncMongoClient[Document],
    namespace: str,
    smtp_sink: SmtpSink,
    service_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    await start_services("intake", "notifier")
    requests = await submit_all(http, [spread_request(i) for i in range(BATCH)])
    await tap.wait_for("request.submitted", BATCH)
    decisions = mongo[database_name(namespace, "allocator")]["decisions"]

    doomed = ServiceProcess("allocator", service_env, tmp_path / "killed-allocator.log").start()
    try:

        async def some_decided() -> bool:
            return await decisions.count_documents({}) >= 1

        await eventually(some_decided, timeout=60, what="the allocator deciding its first requests")
    finally:
        doomed.kill()
    decided_when_killed = await decisions.count_documents({})
    assert decided_when_killed < BATCH  # killed mid-batch
    queue = await broker.get_queue(topology.queue("allocator"))

    async def undecided_back_in_the_queue() -> bool:
        waiting = (await queue.declare()).message_count or 0
        return waiting >= BATCH - decided_when_killed

    await eventually(undecided_back_in_the_queue, what="the killed allocator's messages requeued")

    await start_services("allocator")
    finals = await wait_all_final(http, requests, timeout=90)

    assert set(finals.values()) == {"delivered"}, finals
    assert await decisions.count_documents({}) == BATCH
    events = [m.cloudevent for m in tap.messages]
    duplicates = await find_duplicates(mongo, namespace, requests, events, smtp_sink)
    assert not duplicates, duplicates
    assert set((await count_assignments(mongo, namespace, requests)).values()) == {1}
    assert len(tap.with_prefix("room.assigned")) >= BATCH
    request.node.user_properties.append(("decided_before_the_kill", decided_when_killed))
