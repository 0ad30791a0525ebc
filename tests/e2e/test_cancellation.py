"""Cancelling frees the room for that window at once, through the running services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.paths import SAMPLE_POOL
from tests.support.requests import request_body, tomorrow_at
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_allocator.pool import load_pool_file
from vcs_shared.store import Document, database_name
from vcs_shared.thaitime import BANGKOK

pytestmark = pytest.mark.e2e

WINDOW = tomorrow_at(13, 30, days=3)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def submit(http: httpx.AsyncClient, district_code: str) -> str:
    response = await http.post(
        "/v1/requests", json=request_body(district_code, starts_at=WINDOW, participants=250)
    )
    assert response.status_code == 202, response.text
    request_id: str = response.json()["request_id"]
    return request_id


async def meeting_id_of(http: httpx.AsyncClient, request_id: str) -> str:
    async def delivered() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/v1/requests/{request_id}")).json()
        return body if body["status"] == "delivered" else None

    view = await eventually(delivered, timeout=30, what=f"{request_id} delivered")
    meeting_id: str = view["assignment"]["meeting_id"]
    return meeting_id


async def test_a_cancelled_room_goes_to_the_next_request_for_that_window(
    start_services: StartServices, http: httpx.AsyncClient, tap: EventTap
) -> None:
    await start_services()
    first = await submit(http, "4701")
    held = await meeting_id_of(http, first)
    meanwhile = await submit(http, "4702")
    assert await meeting_id_of(http, meanwhile) != held  # taken while the first holds it

    cancelled = await http.post(f"/v1/requests/{first}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    [released] = await tap.wait_for("room.released")
    assert released.routing_key == "room.released.47.4701"
    assert released.cloudevent["subject"] == first
    assert released.cloudevent["data"]["meeting_id"] == held

    again = await http.post(f"/v1/requests/{first}/cancel")
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"

    # Every room that fits is taken for this window but one (the meanwhile request's):
    # requests for all the others get them all, the released one included.
    fitting = [
        r
        for r in load_pool_file(SAMPLE_POOL)
        if r.active and r.pool in ("47", "region-12") and r.capacity >= 250
    ]
    offices = [f"47{n:02d}" for n in range(3, 3 + len(fitting) - 1)]
    later = [await submit(http, office) for office in offices]
    assigned = {await meeting_id_of(http, request_id) for request_id in later}
    assert held in assigned
    assert len(assigned) == len(later)
    await tap.wait_for("credentials.delivered", 2 + len(later))
    assert [m.cloudevent["subject"] for m in tap.with_prefix("room.released")] == [first]
    assert len({m.message_id for m in tap.with_prefix("request.cancelled")}) == 1


async def test_cancelling_a_meeting_under_way_gives_back_the_rest_of_its_window(
    start_services: StartServices,
    http: httpx.AsyncClient,
    tap: EventTap,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    await start_services()
    started = datetime.now(BANGKOK).replace(microsecond=0) - timedelta(minutes=3)
    response = await http.post(
        "/v1/requests", json=request_body("4701", starts_at=started, hours=2, participants=20)
    )
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    await meeting_id_of(http, request_id)
    slots = mongo[database_name(namespace, "allocator")]["slots"]
    held = [doc["slot"] async for doc in slots.find({"request_id": request_id})]

    cancelled = await http.post(f"/v1/requests/{request_id}/cancel")

    assert cancelled.status_code == 200
    [event] = await tap.wait_for("request.cancelled")
    await tap.wait_for("room.released")
    at = datetime.fromisoformat(event.cloudevent["data"]["cancelled_at"])
    first_free = int((at - EPOCH) // timedelta(minutes=5)) * 5 + 5  # the next 5-minute slot
    first_free = max(first_free, min(held) + 4 * 5)  # at least four slots stay held
    kept = {doc["slot"] async for doc in slots.find({"request_id": request_id})}
    assert max(kept) < first_free
    assert {s for s in held if s < first_free} <= kept
    assert set(range(first_free - 15, first_free, 5)) <= kept  # keyed up to its end
    assert kept  # what is over stays booked
    assert len(kept) < len(held)  # the rest of the window is free again
