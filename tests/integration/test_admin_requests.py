"""``GET /v1/admin/requests`` and ``…/{id}/history`` through the intake's front door: the
desk's read model, learnt from the events on its own queue (real broker, real store, the four
services as processes). Filters, pages, the region rules, history order and who cancelled."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.auth import bearer, national_operator_token, operator_token
from tests.support.requests import request_body, tomorrow_at, wait_status
from tests.support.services import StartServices
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

REGION_12 = operator_token("somsri", region="12")


async def submit(http: httpx.AsyncClient, district: str, **overrides: Any) -> str:
    response = await http.post("/v1/requests", json=request_body(district, **overrides))
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


async def listed(
    http: httpx.AsyncClient, token: str = REGION_12, **params: str | int
) -> list[dict[str, Any]]:
    response = await http.get("/v1/admin/requests", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def desk_shows(http: httpx.AsyncClient, request_id: str, status: str) -> dict[str, Any]:
    """Waits until the desk's read model has the request in ``status`` (it learns by events)."""

    async def seen() -> dict[str, Any] | None:
        items = await listed(http, national_operator_token(), limit=200)
        return next(
            (i for i in items if i["request_id"] == request_id and i["status"] == status), None
        )

    return await eventually(seen, timeout=30, what=f"{request_id} {status} at the desk")


async def test_the_list_filters_pages_and_keeps_to_the_callers_provinces(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("allocator", "notifier", "desk", "intake")
    first = await submit(
        http, "4701", title="ประชุมหนึ่ง", urgency="normal", starts_at=tomorrow_at(8, days=3)
    )
    second = await submit(
        http, "4702", title="ประชุมสอง", needs_support=True, starts_at=tomorrow_at(9, days=2)
    )
    third = await submit(http, "4701", title="ประชุมสาม", starts_at=tomorrow_at(13, days=4))
    bangkok = await submit(http, "1001", title="กรุงเทพ")
    for request_id in (first, second, third, bangkok):
        final = await wait_status(http, request_id, "delivered", "rejected")
        row = await desk_shows(http, request_id, final["status"])  # the desk agrees
        assert "passcode" not in row
        assert "join_url" not in row

    region = await listed(http)
    assert [i["request_id"] for i in region] == [third, second, first]  # newest first, no 10
    national = await listed(http, national_operator_token())
    assert bangkok in {i["request_id"] for i in national}
    item = next(i for i in region if i["request_id"] == second)
    assert item["district_code"] == "4702"
    assert item["title"] == "ประชุมสอง"
    assert item["participants"] == 250
    assert item["urgency"] == "urgent"
    assert item["needs_support"] is True
    assert item["meeting_id"]
    assert item["starts_at"] < item["ends_at"]

    assert [i["request_id"] for i in await listed(http, district="4701")] == [third, first]
    assert [i["request_id"] for i in await listed(http, needs_support="true")] == [second]
    assert [i["request_id"] for i in await listed(http, urgency="normal")] == [first]
    day_after = tomorrow_at(9, days=2).date().isoformat()
    assert [i["request_id"] for i in await listed(http, date=day_after)] == [second]
    assert await listed(http, status="cancelled") == []
    assert await listed(http, stuck="true") == []  # all delivered: nothing stuck
    assert len(await listed(http, province="47", status="delivered")) == 3
    assert await listed(http, province="47", status="rejected") == []

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = await http.get("/v1/admin/requests", params=params, headers=bearer(REGION_12))
        pages.append([i["request_id"] for i in answer.json()["items"]])
        cursor = answer.json()["next"]
        if cursor is None:
            break
    assert pages == [[third, second], [first]]

    outside = await http.get(
        "/v1/admin/requests", params={"province": "10"}, headers=bearer(REGION_12)
    )
    assert outside.status_code == 403
    assert "10" in outside.json()["detail"]
    national_10 = await listed(http, national_operator_token(), province="10")
    assert [i["request_id"] for i in national_10] == [bangkok]
    hidden = await http.get(f"/v1/admin/requests/{bangkok}/history", headers=bearer(REGION_12))
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "lost"),
        ("date", "2026-13-40"),
        ("urgency", "soon"),
        ("needs_support", "perhaps"),
        ("stuck", "maybe"),
        ("district", "47"),
        ("cursor", "not-a-cursor"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    start_services: StartServices, http: httpx.AsyncClient, field: str, value: str
) -> None:
    await start_services("desk", "intake")
    answer = await http.get("/v1/admin/requests", params={field: value})
    assert answer.status_code == 422, answer.text
    assert [d["loc"][-1] for d in answer.json()["detail"]] == [field]


async def test_history_tells_every_event_in_order_and_who_cancelled(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("allocator", "notifier", "desk", "intake")
    request_id = await submit(http, "4701", title="ประชุมที่ยกเลิก")
    await wait_status(http, request_id, "delivered")
    cancelled = await http.post(f"/v1/requests/{request_id}/cancel", headers=bearer(REGION_12))
    assert cancelled.status_code == 200, cancelled.text
    await desk_shows(http, request_id, "cancelled")

    async def told() -> list[dict[str, Any]] | None:
        answer = await http.get(f"/v1/admin/requests/{request_id}/history")
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        names = [i["event"] for i in items]
        return items if "room.released" in names and "request_cancel" in names else None

    items = await eventually(told, timeout=30, what="the cancel and the release in the history")
    names = [i["event"] for i in items]
    assert names[:3] == ["request.submitted", "room.assigned", "credentials.delivered"]
    assert names.index("request_cancel") < names.index("room.released")
    assert names.count("request.cancelled") == 1
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    audit = next(i for i in items if i["event"] == "request_cancel")
    assert audit["actor"]["name"] == "somsri"
    assert audit["source"] == "audit"
    event = next(i for i in items if i["event"] == "request.cancelled")
    assert event["actor"]["id"] == "operator"  # request.cancelled names the role; the audit, who
