"""Allocators stopped in the middle of a batch, first gracefully, then not at all.

* SIGTERM: the allocator stops taking messages, finishes the ones in its hands (no claim
  left without its decision, every decision's event published) and exits 0.
* SIGKILL: the broker redelivers what the process held unacked to the next allocator, and
  every request is decided once, with one reservation and one room.assigned, whatever step
  each message had reached when the process died (before its claim, between its slots and
  its decision, before its ack).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.faults import (
    count_assignments,
    find_duplicates,
    spread_request,
    submit_all,
    wait_all_final,
)
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_shared.broker import Topology
from vcs_shared.store import Document, database_name
from vcs_tools.devstack import ServiceProcess, SmtpSink

pytestmark = pytest.mark.e2e

BATCH = 60


async def test_stopped_and_killed_allocators_lose_nothing_and_do_nothing_twice(
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

    slots = mongo[database_name(namespace, "allocator")]["slots"]

    def more_decided_than(count: int) -> Any:
        async def probe() -> bool:
            return await decisions.count_documents({}) > count

        return probe

    stopped = ServiceProcess("allocator", service_env, tmp_path / "stopped-allocator.log").start()
    try:
        await eventually(more_decided_than(0), timeout=60, what="the first decisions")
    finally:
        exit_code = stopped.stop()  # SIGTERM: graceful, it finishes the messages in its hands
    assert exit_code == 0
    log = stopped.log_path.read_text()
    assert '"event": "consumer.stopped"' in log
    assert '"event": "allocator.stopped"' in log
    decided_when_stopped = await decisions.count_documents({})
    assert decided_when_stopped < BATCH  # stopped mid-batch
    claimed = {doc["request_id"] async for doc in slots.find({}, {"request_id": 1})}
    decided = {doc["_id"] async for doc in decisions.find({}, {"_id": 1})}
    assert claimed <= decided  # no allocation abandoned half-way
    assert await decisions.count_documents({"outbox_pending": True}) == 0  # all published

    doomed = ServiceProcess("allocator", service_env, tmp_path / "killed-allocator.log").start()

    async def consuming() -> bool:
        return '"event": "consumer.started"' in doomed.log_path.read_text()

    try:
        # Polled afresh from its start: the rest of the batch takes it a few tenths of a second,
        # less than the longest pause of a poll that began with the process.
        await eventually(consuming, timeout=60, what="the second allocator consuming")
        await eventually(more_decided_than(decided_when_stopped), timeout=60, what="decisions")
    finally:
        doomed.kill()  # SIGKILL: no chance to finish anything
    decided_when_killed = await decisions.count_documents({})
    assert decided_when_killed < BATCH  # killed mid-batch
    queue = await broker.get_queue(topology.queue_for("allocator", "47"))  # 4701's shard

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
    request.node.user_properties += [
        ("decided_before_the_sigterm", decided_when_stopped),
        ("decided_before_the_sigkill", decided_when_killed),
    ]
