"""Every operator action is bound to the operator's provinces (issue 11.1), on the intake's
address: lists are filtered, a single object outside is 404, a write naming anything
outside is refused whole with 403 naming it. The national role acts everywhere.

Pools and reservations are the allocator's (forwarded there), dead letters the desk's;
each applies the same rules (vcs_shared.scope) to what it owns.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import aio_pika
import httpx
import pytest

from tests.integration.test_allocator_concurrency import START, all_decided, publish, submitted
from tests.support.auth import bearer, national_operator_token, operator_token
from tests.support.paths import SAMPLE_POOL
from tests.support.services import StartServices
from tests.support.tap import EventTap, take_from
from vcs_allocator.pool import load_pool_file
from vcs_shared.broker import ORIGINAL_ROUTING_KEY_HEADER, Topology
from vcs_shared.envelope import encode
from vcs_shared.thaitime import BANGKOK
from vcs_shared.topology import REPLAY_HEADER, REPLAY_SHARD_HEADER, shard_of

pytestmark = pytest.mark.integration

HEADER = "meeting_id,capacity,pool,passcode,join_url,active\n"
BANGKOK_ROOM = "10000000001"
POOL_10 = HEADER + f"{BANGKOK_ROOM},300,10,bkk-s3cret,https://zoom.example/j/{BANGKOK_ROOM},\n"
REGION_12 = operator_token("somsri", region="12")
PROVINCE_47 = operator_token("somchai", region=None, provinces=("47",))
NATIONAL = national_operator_token()
CSV = {"content-type": "text/csv"}


def pools_of(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["pool"] for item in response.json()["items"]}


@pytest.fixture
async def admin(
    start_services: StartServices, intake_url: str
) -> Any:  # the allocator behind the intake, and pool 10 loaded by the national role
    await start_services("allocator", "intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        loaded = await client.post(
            "/v1/admin/pools/reload", content=POOL_10, headers={**CSV, **bearer(NATIONAL)}
        )
        assert loaded.status_code == 200, loaded.text
        yield client


async def test_a_region_operator_lists_and_exports_only_its_own_pools(
    admin: httpx.AsyncClient,
) -> None:
    everything = pools_of(await admin.get("/v1/admin/pools", headers=bearer(NATIONAL)))
    region_12 = pools_of(await admin.get("/v1/admin/pools", headers=bearer(REGION_12)))
    province_47 = pools_of(await admin.get("/v1/admin/pools", headers=bearer(PROVINCE_47)))

    assert everything == {"10", "47", "48", "49", "38", "region-12"}
    assert region_12 == {"47", "48", "49", "38", "region-12"}
    assert province_47 == {"47"}  # region-12's overflow pool is shared by the whole region

    for params in ({"province": "10"}, {"pool": "10"}, {"pool": "region-3"}):
        refused = await admin.get("/v1/admin/pools", params=params, headers=bearer(REGION_12))
        assert refused.status_code == 403, params
        assert next(iter(params.values())) in refused.json()["detail"]
    assert pools_of(
        await admin.get("/v1/admin/pools", params={"province": "10"}, headers=bearer(NATIONAL))
    ) == {"10"}

    export = await admin.get(
        "/v1/admin/pools/export", params={"province": "47"}, headers=bearer(REGION_12)
    )
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "pools-47.csv" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    sample_47 = [r for r in load_pool_file(SAMPLE_POOL) if r.pool == "47"]
    assert list(rows[0]) == ["meeting_id", "capacity", "pool", "active"]
    assert sorted(row["meeting_id"] for row in rows) == sorted(r.meeting_id for r in sample_47)
    assert not any(room.passcode in export.text for room in sample_47)
    whole = await admin.get("/v1/admin/pools/export", headers=bearer(REGION_12))
    assert {row["pool"] for row in csv.DictReader(io.StringIO(whole.text))} == region_12


async def test_a_reload_naming_any_pool_outside_is_refused_whole_with_403_naming_it(
    admin: httpx.AsyncClient,
) -> None:
    before = (await admin.get("/v1/admin/pools", headers=bearer(NATIONAL))).json()["items"]
    file = HEADER + (
        "98765432101,300,47,a,https://zoom.example/j/98765432101,\n"
        "98765432102,300,10,b,https://zoom.example/j/98765432102,\n"
        "98765432103,300,region-3,c,https://zoom.example/j/98765432103,\n"
    )
    overflow = HEADER + "98765432104,1000,region-12,d,https://zoom.example/j/98765432104,\n"

    by_region = await admin.post(
        "/v1/admin/pools/reload", content=file, headers={**CSV, **bearer(REGION_12)}
    )
    by_province = await admin.post(
        "/v1/admin/pools/reload", content=overflow, headers={**CSV, **bearer(PROVINCE_47)}
    )

    assert by_region.status_code == 403
    assert by_region.json()["detail"].endswith(": 10, region-3")
    assert by_province.status_code == 403
    assert by_province.json()["detail"].endswith(": region-12")
    after = (await admin.get("/v1/admin/pools", headers=bearer(NATIONAL))).json()["items"]
    assert after == before  # nothing of either file was loaded

    own_overflow = await admin.post(
        "/v1/admin/pools/reload", content=overflow, headers={**CSV, **bearer(REGION_12)}
    )
    assert own_overflow.status_code == 200, own_overflow.text
    assert own_overflow.json()["pools"] == ["region-12"]


async def test_reservations_are_listed_for_the_callers_provinces_only(
    admin: httpx.AsyncClient, tap: EventTap, amqp_url: str, topology: Topology
) -> None:
    sakon, bangkok = submitted("4701", participants=250), submitted("1001", participants=250)
    await publish(amqp_url, topology, [sakon, bangkok])
    await all_decided(tap, {sakon.request_id, bangkok.request_id}, timeout=30)
    day = {"date": START.astimezone(BANGKOK).date().isoformat()}

    national = await admin.get("/v1/admin/reservations", params=day, headers=bearer(NATIONAL))
    region = await admin.get("/v1/admin/reservations", params=day, headers=bearer(REGION_12))
    refused = await admin.get(
        "/v1/admin/reservations", params={**day, "province": "10"}, headers=bearer(REGION_12)
    )

    assert {r["request_id"] for r in national.json()} == {sakon.request_id, bangkok.request_id}
    assert [r["request_id"] for r in region.json()] == [sakon.request_id]
    assert refused.status_code == 403


async def dead_letter(channel: Any, topology: Topology, routing_key: str, body: bytes) -> str:
    """A letter in the allocator's DLQ as the consumer puts one there (reason and key in
    headers); returns its message id."""
    message_id = f"letter-{routing_key}"
    dead = await channel.get_exchange(topology.dead_exchange)
    await dead.publish(
        aio_pika.Message(
            body,
            message_id=message_id,
            headers={ORIGINAL_ROUTING_KEY_HEADER: routing_key, "x-vcs-dead-reason": "kept failing"},
        ),
        routing_key=topology.queue("allocator"),
    )
    return message_id


async def test_dead_letters_are_scoped_and_replayed_with_their_original_routing_key(
    start_services: StartServices,
    intake_url: str,
    broker: Any,
    topology: Topology,
    service_env: dict[str, str],
) -> None:
    await start_services("desk", "intake")
    async with httpx.AsyncClient(base_url=service_env["VCS_DESK_URL"]) as desk:
        health = await desk.get("/healthz")  # open, like the intake's
    assert (health.status_code, health.json()) == (
        200,
        {"status": "ok", "broker": "up", "store": "up"},
    )
    sakon_key, bangkok_key = "request.submitted.47.4701", "request.submitted.10.1001"
    sakon = await dead_letter(
        broker, topology, sakon_key, encode(submitted("4701"), source="t").body.encode()
    )
    bangkok = await dead_letter(
        broker, topology, bangkok_key, encode(submitted("1001"), source="t").body.encode()
    )
    nowhere = await dead_letter(broker, topology, "garbage", b"{}")

    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:

        async def listed(token: str) -> list[str]:
            answer = await client.get("/v1/admin/dead-letters", headers=bearer(token))
            assert answer.status_code == 200, answer.text
            return [letter["message_id"] for letter in answer.json()]

        assert await listed(REGION_12) == [sakon]
        assert await listed(NATIONAL) == [sakon, bangkok, nowhere]
        outside = await client.post(
            "/v1/admin/dead-letters/replay",
            json={"message_id": bangkok},
            headers=bearer(REGION_12),
        )
        assert outside.status_code == 404
        replayed = await client.post(
            "/v1/admin/dead-letters/replay",
            json={"service": "allocator", "all": True},
            headers=bearer(REGION_12),
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == [
            {"service": "allocator", "replayed": [sakon], "skipped_poison": [], "left": 0}
        ]
        assert await listed(NATIONAL) == [bangkok, nowhere]

    for shard in topology.consumed_queues("allocator"):  # into its province's shard only
        count = (await (await broker.get_queue(shard)).declare()).message_count
        assert count == (1 if shard == topology.queue_for("allocator", "47") else 0), shard
    back = await take_from(await broker.get_queue(topology.queue_for("allocator", "47")))
    assert back.message_id == sakon
    assert back.routing_key == sakon_key  # as first published, not the queue's name
    assert back.headers[REPLAY_HEADER] == "allocator"
    assert back.headers[REPLAY_SHARD_HEADER] == str(shard_of("allocator", "47"))
    assert "x-vcs-dead-reason" not in back.headers
    notifier = await broker.get_queue(topology.queue("notifier"))
    assert await notifier.get(no_ack=True, fail=False) is None  # only the service it came from
