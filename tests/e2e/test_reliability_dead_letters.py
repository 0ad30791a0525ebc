"""Poison never blocks a queue, what keeps failing is dead-lettered, and operators list and
replay dead letters (``vcs dlq``, ``/v1/admin/dead-letters`` on the intake's address, served
by the desk) without losing any.

* Bytes that are not JSON and a CloudEvent whose data fail the schema
  (``participants: "many"``), published straight onto the events exchange with
  ``request.submitted.47.4701``, land in the allocator's DLQ at once with the
  reason in a header; a valid request submitted afterwards is still delivered.
* A valid request whose handling kept failing (a stand-in consumer nacks it
  until the quorum queue's delivery limit dead-letters it) is replayed with
  ``vcs dlq replay --id`` once the allocator runs, and is then handled as a
  fresh message. Poison is replayed only when asked (``include_poison``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from tests.support.events import sealed
from tests.support.faults import fail_until, spread_request, submit_all, wait_all_final
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_shared.broker import Topology
from vcs_shared.envelope import encode
from vcs_shared.events import RequestSubmitted, Urgency

pytestmark = pytest.mark.e2e

VCS = Path(sys.executable).with_name("vcs")
ROUTING_KEY = "request.submitted.47.4701"


def off_schema_event() -> tuple[str, bytes]:
    """A well-formed CloudEvent of a known type whose data say ``participants: "many"``."""
    event = RequestSubmitted(
        request_id=str(uuid.uuid4()),
        province_code="47",
        district_code="4701",
        title="poison",
        starts_at=datetime(2030, 1, 1, 2, tzinfo=UTC),
        ends_at=datetime(2030, 1, 1, 3, tzinfo=UTC),
        participants=10,
        urgency=Urgency.normal,
        needs_support=False,
        sealed_contact=sealed(),
        submitted_at=datetime.now(UTC),
    )
    message = encode(event, source="test")
    body = json.loads(message.body)
    body["data"]["participants"] = "many"
    return message.id, json.dumps(body).encode()


async def publish_raw(channel: Any, exchange: str, body: bytes, message_id: str) -> None:
    target = await channel.get_exchange(exchange)
    await target.publish(
        aio_pika.Message(
            body=body,
            message_id=message_id,
            content_type="application/cloudevents+json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=ROUTING_KEY,
    )


async def queue_depth(channel: Any, name: str) -> int:
    declared = await (await channel.get_queue(name)).declare()
    return int(declared.message_count or 0)


def vcs_dlq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VCS_")}
    return subprocess.run(
        [str(VCS), "dlq", *args],
        env={**clean, **env},  # the intake's address and the signing secret of the test
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def fail_until_dead_lettered(channel: Any, topology: Topology) -> None:
    """A stand-in allocator whose handler always fails: nack with requeue until the quorum
    queue's delivery limit sends the message to the dead-letter exchange."""
    queue = await channel.get_queue(topology.queue_for("allocator", "47"))

    async def dead_lettered() -> bool:
        return await queue_depth(channel, topology.dead_letter_queue("allocator")) == 1

    await fail_until(queue, dead_lettered, timeout=30, what="the delivery limit dead-lettering it")


async def test_poison_is_dead_lettered_at_once_and_operators_list_and_replay(
    start_services: StartServices,
    http: httpx.AsyncClient,
    broker: Any,
    topology: Topology,
    service_env: dict[str, str],
    intake_url: str,
) -> None:
    allocator_dlq = topology.dead_letter_queue("allocator")
    cli_env = {"VCS_API_URL": intake_url, "VCS_JWT_SECRET": service_env["VCS_JWT_SECRET"]}
    await start_services("intake", "notifier", "desk")
    [failed] = await submit_all(http, [spread_request(0)])
    await fail_until_dead_lettered(broker, topology)

    not_json_id = str(uuid.uuid4())
    await publish_raw(broker, topology.exchange, b"\x00\x01 not json {", not_json_id)
    off_schema_id, off_schema = off_schema_event()
    await publish_raw(broker, topology.exchange, off_schema, off_schema_id)
    await start_services("allocator")

    async def three_dead() -> bool:
        return await queue_depth(broker, allocator_dlq) == 3

    await eventually(three_dead, timeout=30, what="both poison messages in the allocator's DLQ")
    [valid] = await submit_all(http, [spread_request(1)])
    assert (await wait_all_final(http, [valid]))[valid] == "delivered"
    assert (await http.get(f"/v1/requests/{failed}")).json()["status"] == "submitted"

    listed = vcs_dlq(cli_env, "list", "--service", "allocator", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {letter["message_id"] for letter in letters[1:]} == {not_json_id, off_schema_id}
    by_id = {letter["message_id"]: letter for letter in letters}
    letters_ids = [letter["message_id"] for letter in letters]
    assert "not a CloudEvent" in by_id[not_json_id]["reason"]
    assert by_id[not_json_id]["event_type"] is None
    assert "participants" in by_id[off_schema_id]["reason"]
    assert all("\n" not in letter["reason"] for letter in letters)  # one line each
    assert [letter["poison"] for letter in letters] == [False, True, True]
    assert {letter["province_code"] for letter in letters} == {"47"}
    assert by_id[off_schema_id]["event_type"] == "th.go.dopa.vcs.request.submitted.v2"
    assert all(by_id[i]["routing_key"] == ROUTING_KEY for i in (not_json_id, off_schema_id))
    limit = letters[0]
    assert limit["reason"] == "delivery_limit"
    assert limit["routing_key"] == ROUTING_KEY
    assert limit["deaths"][0]["queue"] == topology.queue_for("allocator", "47")
    assert limit["event_type"] == "th.go.dopa.vcs.request.submitted.v2"
    human = vcs_dlq(cli_env, "list")
    assert human.returncode == 0
    assert "reason=delivery_limit" in human.stdout
    assert f"notifier\t{not_json_id}" in human.stdout  # the notifier binds request.submitted too
    in_order = [line.split("\t")[1] for line in human.stdout.splitlines()[:3]]
    assert in_order == [letter["message_id"] for letter in letters]  # nothing lost or reordered

    replayed = vcs_dlq(cli_env, "replay", "--service", "allocator", "--id", limit["message_id"])
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.splitlines() == [f"replayed allocator {limit['message_id']}"]
    assert (await wait_all_final(http, [failed]))[failed] == "delivered"
    assert await queue_depth(broker, allocator_dlq) == 2

    listing = await http.get("/v1/admin/dead-letters", params={"service": "allocator"})
    assert listing.status_code == 200
    assert [d["message_id"] for d in listing.json()] == [d["message_id"] for d in letters[1:]]
    everywhere = (await http.get("/v1/admin/dead-letters")).json()
    assert {(d["service"], d["message_id"]) for d in everywhere} >= {
        ("notifier", not_json_id),
        ("notifier", off_schema_id),
    }

    replay_all = await http.post(
        "/v1/admin/dead-letters/replay", json={"service": "allocator", "all": True}
    )
    assert replay_all.status_code == 200, replay_all.text
    [left_alone] = replay_all.json()
    assert left_alone["replayed"] == []
    assert sorted(left_alone["skipped_poison"]) == sorted([not_json_id, off_schema_id])
    assert left_alone["left"] == 2
    one_poison = await http.post("/v1/admin/dead-letters/replay", json={"message_id": not_json_id})
    assert one_poison.status_code == 409
    assert "include_poison" in one_poison.json()["detail"]
    cli_all = vcs_dlq(cli_env, "replay", "--service", "allocator", "--all")
    assert cli_all.returncode == 1
    assert sorted(cli_all.stdout.splitlines()) == sorted(
        [
            *(f"left poison allocator {i} (--include-poison replays it)" for i in letters_ids[1:]),
            "nothing replayed",
        ]
    )
    assert await queue_depth(broker, allocator_dlq) == 2

    replay_all = await http.post(
        "/v1/admin/dead-letters/replay",
        json={"service": "allocator", "all": True, "include_poison": True},
    )
    assert replay_all.status_code == 200, replay_all.text
    [outcome] = replay_all.json()
    assert sorted(outcome["replayed"]) == sorted([not_json_id, off_schema_id])

    async def poison_back_in_dlq() -> list[dict[str, Any]] | None:
        back = (await http.get("/v1/admin/dead-letters", params={"service": "allocator"})).json()
        return back if len(back) == 2 else None

    back = await eventually(poison_back_in_dlq, what="the replayed poison back in the DLQ")
    assert {d["message_id"] for d in back} == {not_json_id, off_schema_id}
    assert all(d["reason"] for d in back)

    unknown = await http.post("/v1/admin/dead-letters/replay", json={"message_id": "nope"})
    assert unknown.status_code == 404
    both = await http.post("/v1/admin/dead-letters/replay", json={"message_id": "x", "all": True})
    assert both.status_code == 422
