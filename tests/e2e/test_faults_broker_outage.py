"""The broker goes away (``rabbitmqctl stop_app``) while offices submit: every request is
accepted (202) from the store alone, and once the broker is back (``start_app``) the outbox
relays publish what waited, the robust connections restore their consumers and publisher
channels, and every request reaches a final state exactly once.

All of it runs on a private RabbitMQ node (tests/support/private_broker.py): the system
RabbitMQ that other tests use is never touched.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.events import cloudevent_type
from tests.support.faults import (
    count_assignments,
    declare_audit_queue,
    drain,
    find_duplicates,
    spread_request,
    submit_all,
    wait_all_final,
)
from tests.support.private_broker import PrivateBroker, private_broker
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_shared.broker import Topology
from vcs_shared.store import Document
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.e2e

__all__ = ["private_broker"]

DURING_OUTAGE = 30


@pytest.fixture
def amqp_url(private_broker: PrivateBroker) -> str:
    """Every fixture of this module (services, taps, topology) talks to the private node."""
    return private_broker.url


async def health(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/healthz")
    return response.status_code, response.json()


async def test_requests_submitted_while_the_broker_is_down_are_all_answered_once(
    private_broker: PrivateBroker,
    start_services: StartServices,
    http: httpx.AsyncClient,
    broker: Any,
    topology: Topology,
    mongo: AsyncMongoClient[Document],
    namespace: str,
    smtp_sink: SmtpSink,
    request: pytest.FixtureRequest,
) -> None:
    audit = await declare_audit_queue(broker, topology)
    services = await start_services()
    [before] = await submit_all(http, [spread_request(0)])
    await wait_all_final(http, [before])

    await asyncio.to_thread(private_broker.stop_app)

    async def broker_reported_down() -> bool:
        code, body = await health(http)
        return code == 503 and body["broker"] == "down"

    await eventually(broker_reported_down, timeout=30, what="/healthz reporting the broker down")
    during = await submit_all(http, [spread_request(i) for i in range(1, DURING_OUTAGE + 1)])
    still_down = await health(http)
    assert still_down[1]["broker"] == "down"  # they really were all accepted during the outage
    assert still_down[1]["outbox"] == "backlog"

    back_at = await asyncio.to_thread(private_broker.start_app)
    finals = await wait_all_final(http, during, timeout=90)
    recovered_after = time.monotonic() - back_at

    async def healthy_again() -> bool:
        code, body = await health(http)
        return code == 200 and body["broker"] == "up"

    await eventually(healthy_again, timeout=30, what="/healthz back to 200")
    [after] = await submit_all(http, [spread_request(DURING_OUTAGE + 1)])  # restored channels
    finals.update(await wait_all_final(http, [after]))
    assert set(finals.values()) == {"delivered"}, finals
    assert all(process.alive() for process in services)

    requests = [before, *during, after]
    events = await drain(audit)
    duplicates = await find_duplicates(mongo, namespace, requests, events, smtp_sink)
    assert not duplicates, duplicates
    assert set((await count_assignments(mongo, namespace, requests)).values()) == {1}
    for kind in ("request.submitted", "room.assigned", "credentials.delivered"):
        subjects = {e["subject"] for e in events if e["type"] == cloudevent_type(kind)}
        assert subjects >= set(requests), kind
    mailed = {str(m["X-VCS-Request-Id"]) for m in smtp_sink.messages}
    assert mailed >= set(requests)
    for service in ("allocator", "notifier", "intake"):
        log = next(p for p in services if p.name == service).log_path.read_text()
        assert '"event": "broker.connection_lost"' in log, service
        assert '"event": "broker.reconnected"' in log, service

    request.node.user_properties += [  # the figures for the note (junit XML)
        ("outage_requests_submitted", len(during)),
        ("outage_requests_lost", len([r for r in during if finals.get(r) != "delivered"])),
        ("outage_recovery_seconds", round(recovered_after, 2)),
    ]
