"""Issue 13: an operator moves a live booking to another room of the pools the office may
use. The new room must be free under the same database-enforced rule as an allocation (the
unique slot index): two reassigns racing for one room, exactly one wins. The old room is
released, ``room.reassigned`` says old and new (credentials sealed), the intake's request
shows the new room, and the office is mailed the new credentials."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.audit import exactly
from tests.support.auth import bearer, national_operator_token, office_token, operator_token
from tests.support.paths import SAMPLE_POOL
from tests.support.people import csrf_field, signed_in_client
from tests.support.requests import request_body, tomorrow_at, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_allocator.pool import load_pool_file
from vcs_shared.store import Document, database_name
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.integration

REGION_12 = bearer(operator_token("somsri", region="12"))
REGION_12_PERSON = ("--operator", "--region", "12")
PROVINCE_47 = bearer(operator_token("somchai", region=None, provinces=("47",)))
NATIONAL = bearer(national_operator_token())
START = tomorrow_at(13, days=4)
PASSCODES = {room.meeting_id: room.passcode for room in load_pool_file(SAMPLE_POOL)}
POOLS = {room.meeting_id: room.pool for room in load_pool_file(SAMPLE_POOL)}
BANGKOK_POOL = (
    "meeting_id,capacity,pool,passcode,join_url,active\n"
    "10000000001,300,10,bkk-one,https://zoom.example/j/10000000001?pwd=bkk-one,\n"
    "10000000002,300,10,bkk-two,https://zoom.example/j/10000000002?pwd=bkk-two,\n"
)


def reassign(request_id: str) -> str:
    return f"/v1/admin/requests/{request_id}/reassign"


async def booked(http: httpx.AsyncClient, district_code: str, **body: Any) -> dict[str, Any]:
    answer = await http.post(
        "/v1/requests", json=request_body(district_code, starts_at=START, **body)
    )
    assert answer.status_code == 202, answer.text
    return await wait_status(http, answer.json()["request_id"], "delivered")


async def free_rooms(http: httpx.AsyncClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await http.get(
        "/v1/availability",
        params={
            "district_code": request["district_code"],
            "starts_at": request["starts_at"],
            "ends_at": request["ends_at"],
            "participants": request["participants"],
        },
        headers=REGION_12,
    )
    assert answer.status_code == 200, answer.text
    rooms: list[dict[str, Any]] = answer.json()["rooms"]
    return rooms


async def test_a_booking_moves_to_a_free_room_and_the_office_gets_the_new_credentials(
    start_services: StartServices,
    http: httpx.AsyncClient,
    tap: EventTap,
    smtp_sink: SmtpSink,
    service_env: dict[str, str],
    intake_url: str,
    tmp_path: Path,
) -> None:
    await start_services("intake", "allocator", "notifier")
    request = await booked(http, "4701")
    old = request["assignment"]["meeting_id"]
    rooms_before = await free_rooms(http, request)
    target = next(r["meeting_id"] for r in rooms_before if r["pool"] == "47")

    moved = await http.post(
        reassign(request["request_id"]), json={"meeting_id": target}, headers=REGION_12
    )

    assert moved.status_code == 200, moved.text
    assert moved.json() == {
        "request_id": request["request_id"],
        "old_meeting_id": old,
        "meeting_id": target,
        "capacity": moved.json()["capacity"],
        "pool": "47",
    }
    [event] = await tap.wait_for("room.reassigned")
    assert event.routing_key == "room.reassigned.47.4701"
    data = event.cloudevent["data"]
    assert (data["old_meeting_id"], data["new_meeting_id"], data["reassignment"]) == (
        old,
        target,
        1,
    )
    assert data["reassigned_by"] == "operator:somsri"
    assert PASSCODES[target] not in event.body.decode()  # sealed, as in room.assigned
    assert "pwd=" not in data["join_url"]

    async def shows_new_room() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/v1/requests/{request['request_id']}")).json()
        return body if body["assignment"]["meeting_id"] == target else None

    shown = await eventually(shows_new_room, timeout=30, what="the new room shown")
    assert shown["assignment"]["passcode"] == PASSCODES[target]

    async def two_mails() -> list[Any] | None:
        return smtp_sink.messages if len(smtp_sink.messages) >= 2 else None

    first, second = await eventually(two_mails, timeout=30, what="the new credentials mailed")
    assert first["Message-ID"] != second["Message-ID"]
    text = second.get_body(("plain",)).get_content()
    assert target in text
    assert PASSCODES[target] in text
    assert old in text
    assert len(tap.with_prefix("credentials.delivered")) >= 1

    rooms_after = {r["meeting_id"] for r in await free_rooms(http, request)}
    assert old in rooms_after  # the old room was released
    assert target not in rooms_after
    reservations = await http.get(
        "/v1/admin/reservations", params={"date": START.date().isoformat()}, headers=REGION_12
    )
    held = [
        r["meeting_id"] for r in reservations.json() if r["request_id"] == request["request_id"]
    ]
    assert held == [target]

    again = await http.post(
        reassign(request["request_id"]), json={"meeting_id": target}, headers=REGION_12
    )
    assert again.status_code == 409
    assert "already" in again.json()["detail"]

    # The console: the request page lists the rooms free for its window; moving it again
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="op12@example.go.th", scope=REGION_12_PERSON
    ) as operator:
        page = await operator.get(f"/console/requests/{request['request_id']}")
        offered = re.findall(r'<option value="([0-9]+)">', page.text)
        assert old in offered
        assert target not in offered
        posted = await operator.post(
            f"/console/requests/{request['request_id']}/reassign",
            data={"csrftoken": csrf_field(page.text), "meeting_id": old},
        )
        assert posted.status_code == 303, posted.text

    async def moved_back() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/v1/requests/{request['request_id']}")).json()
        return body if body["assignment"]["meeting_id"] == old else None

    assert (await eventually(moved_back, timeout=30, what="moved back"))["status"] == "delivered"
    [*_, last] = await tap.wait_for("room.reassigned", 2)
    assert last.cloudevent["data"]["reassignment"] == 2
    assert last.cloudevent["data"]["reassigned_by"].startswith("person:")


async def test_two_reassigns_racing_for_one_room_one_wins(
    start_services: StartServices,
    http: httpx.AsyncClient,
    tap: EventTap,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    await start_services("intake", "allocator", "notifier", "desk")
    first, second = await asyncio.gather(booked(http, "4701"), booked(http, "4702"))
    held = {first["assignment"]["meeting_id"], second["assignment"]["meeting_id"]}
    target = next(
        r["meeting_id"] for r in await free_rooms(http, first) if r["meeting_id"] not in held
    )

    answers = await asyncio.gather(
        *(
            http.post(reassign(r["request_id"]), json={"meeting_id": target}, headers=REGION_12)
            for r in (first, second)
        )
    )

    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    assert "not free" in loser.json()["detail"]
    winner = next(r for r, a in zip((first, second), answers, strict=True) if a.status_code == 200)
    slots = mongo[database_name(namespace, "allocator")]["slots"]
    holders = {doc["request_id"] async for doc in slots.find({"meeting_id": target})}
    assert holders == {winner["request_id"]}
    await tap.wait_for("room.reassigned")
    assert len(tap.with_prefix("room.reassigned")) == 1
    [entry] = await exactly(http, 1, target=winner["request_id"], action="room_reassign")
    assert entry["after"] == f"room {target}"
    assert entry["actor"]["name"] == "somsri"


async def test_reassign_is_bound_to_the_operator_s_provinces_and_refuses_unfit_rooms(
    start_services: StartServices, http: httpx.AsyncClient, intake_url: str, tap: EventTap
) -> None:
    await start_services("intake", "allocator", "notifier")
    loaded = await http.post(
        "/v1/admin/pools/reload", content=BANGKOK_POOL, headers={"content-type": "text/csv"}
    )
    assert loaded.status_code == 200, loaded.text
    bangkok = await booked(http, "1001")
    sakon = await booked(http, "4701")
    other_bkk = ({"10000000001", "10000000002"} - {bangkok["assignment"]["meeting_id"]}).pop()
    overflow = next(m for m, pool in POOLS.items() if pool == "region-12")
    nakhon_phanom = next(m for m, pool in POOLS.items() if pool == "48")
    body = {"meeting_id": other_bkk}

    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        outside = await client.post(reassign(bangkok["request_id"]), json=body, headers=REGION_12)
        office = await client.post(
            reassign(sakon["request_id"]),
            json={"meeting_id": overflow},
            headers=bearer(office_token("4701")),
        )
        not_its_pool = await client.post(
            reassign(sakon["request_id"]), json={"meeting_id": overflow}, headers=PROVINCE_47
        )
        other_province = await client.post(
            reassign(sakon["request_id"]), json={"meeting_id": nakhon_phanom}, headers=REGION_12
        )
        bad_id = await client.post(
            reassign(sakon["request_id"]), json={"meeting_id": "12ab"}, headers=REGION_12
        )
        unknown = await client.post(reassign("no-such-request"), json=body, headers=NATIONAL)
        national = await client.post(reassign(bangkok["request_id"]), json=body, headers=NATIONAL)

    assert outside.status_code == 404, outside.text
    assert office.status_code == 403
    assert not_its_pool.status_code == 403
    assert "region-12" in not_its_pool.json()["detail"]
    assert other_province.status_code == 422
    assert nakhon_phanom in other_province.json()["detail"]
    assert bad_id.status_code == 422
    assert unknown.status_code == 404
    assert national.status_code == 200, national.text
    assert national.json()["meeting_id"] == other_bkk

    cancelled = await http.post(f"/v1/requests/{sakon['request_id']}/cancel")
    assert cancelled.status_code == 200
    await tap.wait_for("room.released.47.4701")
    gone = await http.post(
        reassign(sakon["request_id"]), json={"meeting_id": overflow}, headers=REGION_12
    )
    assert gone.status_code == 409
    assert "holds no room" in gone.json()["detail"]
