"""The live feed, ``GET /v1/admin/feed`` on the intake's address (issue 13): the desk reads the
feed stream bound to the events exchange and sends each event of the caller's provinces as a
server-sent event, secrets removed; a reconnect with ``Last-Event-ID`` gets exactly what it
missed, also after the desk was killed and started again.

Events are published straight to the namespace's exchange, as the services publish them. The
publish-to-received latency over many events is written to ``.data/feed-latency.txt`` (a figure
for the report, never an assertion).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractChannel

from tests.support.auth import bearer, national_operator_token, office_token, operator_token
from tests.support.events import request_submitted
from tests.support.feed import watching
from tests.support.paths import ROOT
from tests.support.services import StartServices
from vcs_shared.envelope import OutgoingMessage, encode
from vcs_shared.events import Event, RoomAssigned
from vcs_shared.topology import Topology

pytestmark = pytest.mark.integration

REGION_12 = bearer(operator_token("somsri", region="12"))
NATIONAL = bearer(national_operator_token())
LATENCY_REPORT = ROOT / ".data" / "feed-latency.txt"


def assigned(request_id: str, province: str, district: str) -> RoomAssigned:
    start = datetime.now(UTC) + timedelta(days=1)
    return RoomAssigned(
        request_id=request_id,
        province_code=province,
        district_code=district,
        meeting_id="3475946456",
        capacity=300,
        join_url="https://zoom.example/j/3475946456",
        pool="province",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        sealed_credentials="gAAAA-sealed-passcode",
    )


def events_of(province: str, district: str, count: int) -> list[Event]:
    """``count`` events of one office: a submitted request, then its assignment, and so on."""
    found: list[Event] = []
    while len(found) < count:
        request_id = str(uuid.uuid4())
        submitted = request_submitted(request_id, datetime.now(UTC) + timedelta(days=2))
        found.append(
            submitted.model_copy(update={"province_code": province, "district_code": district})
        )
        found.append(assigned(request_id, province, district))
    return found[:count]


class Publisher:
    def __init__(self, channel: AbstractChannel, topology: Topology) -> None:
        self.channel = channel
        self.topology = topology

    async def publish(self, events: list[Event]) -> list[OutgoingMessage]:
        exchange = await self.channel.get_exchange(self.topology.exchange, ensure=False)
        sent = []
        for event in events:
            message = encode(event, source="test")
            await exchange.publish(
                aio_pika.Message(
                    body=message.body.encode(),
                    message_id=message.id,
                    content_type="application/cloudevents+json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=message.routing_key,
            )
            sent.append(message)
        return sent


@pytest_asyncio.fixture
async def publisher(broker: AbstractChannel, topology: Topology) -> Publisher:
    return Publisher(broker, topology)


@pytest_asyncio.fixture
async def intake(
    start_services: StartServices, intake_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    await start_services("desk", "intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        yield client


def ids(messages: list[OutgoingMessage]) -> list[str]:
    return [m.id for m in messages]


async def test_new_events_arrive_without_secrets_and_a_reconnect_gets_exactly_the_missed_ones(
    intake: httpx.AsyncClient, publisher: Publisher
) -> None:
    async with watching(intake, headers=REGION_12) as watcher:
        first = await publisher.publish(events_of("47", "4701", 3))
        seen = await watcher.wait_for(3)
    assert [r.id for r in seen] == ids(first)
    assert [r.event for r in seen] == ["request.submitted", "room.assigned", "request.submitted"]
    submitted, room = seen[0].cloudevent, seen[1].cloudevent
    assert submitted["type"] == "th.go.dopa.vcs.request.submitted.v2"
    assert submitted["subject"] == submitted["data"]["request_id"]
    assert submitted["data"]["title"] == "test"
    assert "contact" not in submitted["data"]
    assert room["data"]["meeting_id"] == "3475946456"
    assert "sealed_credentials" not in room["data"]
    assert "sealed" not in seen[1].data

    missed = await publisher.publish(events_of("47", "4701", 5))
    async with watching(intake, headers=REGION_12, last_event_id=seen[-1].id) as watcher:
        live = await publisher.publish(events_of("47", "4701", 1))
        await watcher.wait_for_id(live[0].id)
        assert watcher.ids == ids(missed) + ids(live)  # in order, none twice, none lost


async def test_the_feed_resumes_without_gaps_after_the_desk_was_killed(
    start_services: StartServices, intake_url: str, publisher: Publisher
) -> None:
    desk, _ = await start_services("desk", "intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as intake:
        async with watching(intake, headers=NATIONAL) as watcher:
            before = await publisher.publish(events_of("47", "4701", 4))
            last = (await watcher.wait_for(4))[-1]
            desk.kill()
        assert last.id == before[-1].id
        while_down = await publisher.publish(events_of("10", "1001", 3))
        await start_services("desk")
        async with watching(intake, headers=NATIONAL, last_event_id=last.id) as watcher:
            after = await publisher.publish(events_of("47", "4701", 2))
            await watcher.wait_for_id(after[-1].id)
            assert watcher.ids == ids(while_down) + ids(after)


async def test_a_region_12_operator_never_sees_province_10_a_national_one_does(
    intake: httpx.AsyncClient, publisher: Publisher
) -> None:
    async with (
        watching(intake, headers=REGION_12) as region,
        watching(intake, headers=NATIONAL) as national,
        watching(intake, headers=NATIONAL, params={"province": "47"}) as only_47,
    ):
        bangkok = await publisher.publish(events_of("10", "1001", 2))
        sakon = await publisher.publish(events_of("47", "4701", 2))
        await region.wait_for_id(sakon[-1].id)
        await national.wait_for_id(sakon[-1].id)
        await only_47.wait_for_id(sakon[-1].id)
    assert region.ids == ids(sakon)  # the province-10 events came first, and never arrived
    assert national.ids == ids(bangkok) + ids(sakon)
    assert only_47.ids == ids(sakon)
    assert {r.cloudevent["data"]["province_code"] for r in region.received if r.id} == {"47"}


async def test_who_may_watch_and_an_unknown_last_event_id(
    intake: httpx.AsyncClient, publisher: Publisher
) -> None:
    assert (await intake.get("/v1/admin/feed")).status_code == 401
    office = await intake.get("/v1/admin/feed", headers=bearer(office_token("4701")))
    assert office.status_code == 403
    outside = await intake.get("/v1/admin/feed", params={"province": "10"}, headers=REGION_12)
    assert outside.status_code == 403
    assert "10" in outside.json()["detail"]

    unknown = str(uuid.uuid4())
    async with watching(intake, headers=REGION_12, last_event_id=unknown) as watcher:
        live = await publisher.publish(events_of("47", "4701", 1))
        await watcher.wait_for_id(live[0].id)
    reset, event = watcher.received
    assert reset.event == "reset"
    assert not reset.id
    assert reset.cloudevent["last_event_id"] == unknown
    assert event.id == live[0].id


async def test_publish_to_feed_latency_over_many_events(
    intake: httpx.AsyncClient, publisher: Publisher
) -> None:
    """200 events, one after the other, each timed from its publish to its arrival at an
    operator's feed through the intake; all arrive, in order, once each."""
    count = 200
    sent_at: dict[str, float] = {}
    async with watching(intake, headers=REGION_12) as watcher:
        for event in events_of("47", "4701", count):
            sent = time.monotonic()
            (message,) = await publisher.publish([event])
            sent_at[message.id] = sent
            await watcher.wait_for_id(message.id)
        received = await watcher.wait_for(count)
    assert [r.id for r in received] == list(sent_at)
    latencies = sorted((r.at - sent_at[r.id]) * 1000 for r in received)
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * count) - 1]
    LATENCY_REPORT.parent.mkdir(parents=True, exist_ok=True)
    LATENCY_REPORT.write_text(
        f"feed latency, publish -> operator's SSE through the intake, {count} events: "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n"
    )
