"""``GET /v1/requests``: the caller's own requests for API clients, newest first, paginated,
filtered by status and meeting day; never a passcode in a list."""

from __future__ import annotations

import httpx
import pytest

from tests.support.auth import bearer, office_token, operator_token
from tests.support.requests import request_body, tomorrow_at
from tests.support.services import StartServices

pytestmark = pytest.mark.integration


async def submit(http: httpx.AsyncClient, district: str, days: int, title: str) -> str:
    body = request_body(district, starts_at=tomorrow_at(9, days=days), title=title)
    response = await http.post("/v1/requests", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


async def every_page(
    http: httpx.AsyncClient, token: str, **params: str | int
) -> list[list[dict[str, object]]]:
    pages: list[list[dict[str, object]]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await http.get("/v1/requests", params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next"]
        if cursor is None:
            return pages


async def test_an_office_lists_its_own_requests_newest_first_page_by_page(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    own = [await submit(http, "4701", days=1 + i, title=f"ประชุม {i}") for i in range(5)]
    other_office = await submit(http, "4702", days=1, title="อื่น")
    bangkok = await submit(http, "1001", days=1, title="กรุงเทพ")

    pages = await every_page(http, office_token("4701"), limit=2)
    region = await every_page(http, operator_token(region="12"), limit=100)

    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [item["request_id"] for page in pages for item in page]
    assert listed == list(reversed(own))  # newest first, each once, nothing of 4702
    assert {item["request_id"] for item in region[0]} == {*own, other_office}
    assert bangkok not in {item["request_id"] for item in region[0]}
    assert all("passcode" not in item and "join_url" not in item for item in region[0])


async def test_the_list_filters_by_status_and_meeting_day(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    first = await submit(http, "4701", days=3, title="วันที่สาม")
    second = await submit(http, "4701", days=4, title="วันที่สี่")
    cancelled = await http.post(f"/v1/requests/{second}/cancel")
    assert cancelled.status_code == 200
    token = office_token("4701")
    day = tomorrow_at(9, days=3).date().isoformat()

    on_day = await every_page(http, token, date=day)
    only_cancelled = await every_page(http, token, status="cancelled")
    submitted_or_cancelled = (
        await http.get("/v1/requests?status=submitted&status=cancelled", headers=bearer(token))
    ).json()["items"]

    assert [item["request_id"] for item in on_day[0]] == [first]
    assert [item["request_id"] for item in only_cancelled[0]] == [second]
    assert [item["request_id"] for item in submitted_or_cancelled] == [second, first]


async def test_bad_filters_are_422_naming_the_parameter(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    cases = {
        "cursor": "/v1/requests?cursor=not-a-cursor",
        "status": "/v1/requests?status=lost",
        "date": "/v1/requests?date=2569-13-40",
        "limit": "/v1/requests?limit=1000",
    }
    for parameter, url in cases.items():
        response = await http.get(url)
        assert response.status_code == 422, url
        assert response.json()["detail"][0]["loc"][:2] == ["query", parameter]
    assert (await http.get("/v1/requests", headers={"Authorization": ""})).status_code == 401
