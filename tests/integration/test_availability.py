"""Issue 14 "before submitting": how many rooms of the office's province are still free for a
window and size, answered by the allocator (which owns rooms and bookings), through the
intake for an office (its own district only) and operators (their provinces), and shown on
the clerk's form as a hint."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import bearer, national_operator_token, office_token, operator_token
from tests.support.people import signed_in_client
from tests.support.requests import request_body, tomorrow_at, wait_status
from tests.support.services import StartServices

pytestmark = pytest.mark.integration

START = tomorrow_at(9, days=3)
END = START + timedelta(hours=2)
BIG = 600  # in the sample pool, Sakon Nakhon (47) has three 1000-seat rooms, region-12 one
OFFICE = bearer(office_token("4701"))


def window(start: Any = START, end: Any = END, **params: Any) -> dict[str, Any]:
    return {
        "district_code": "4701",
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
        "participants": BIG,
        **params,
    }


async def test_the_free_rooms_of_an_office_s_pools_drop_as_rooms_are_booked(
    start_services: StartServices, intake_url: str, http: httpx.AsyncClient
) -> None:
    await start_services("allocator", "intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30, headers=OFFICE) as office:
        before = await office.get("/v1/availability", params=window())
        assert before.status_code == 200, before.text
        assert before.json()["free"] == 4
        assert before.json()["pools"] == [
            {"pool": "47", "free": 3, "fitting": 3},
            {"pool": "region-12", "free": 1, "fitting": 1},
        ]
        assert before.json()["largest_capacity"] == 1000
        assert "rooms" not in before.json()  # an office gets the count, not the Meeting IDs

        booked = await http.post(
            "/v1/requests", json=request_body(starts_at=START, participants=BIG)
        )
        await wait_status(http, booked.json()["request_id"], "assigned")

        after = (await office.get("/v1/availability", params=window())).json()
        assert after["free"] == 3
        assert after["pools"][0] == {"pool": "47", "free": 2, "fitting": 3}
        overlapping = window(END - timedelta(minutes=10), END + timedelta(hours=1))
        assert (await office.get("/v1/availability", params=overlapping)).json()["free"] == 3
        clear = window(END + timedelta(minutes=15), END + timedelta(hours=1))  # one buffer later
        assert (await office.get("/v1/availability", params=clear)).json()["free"] == 4
        small = (await office.get("/v1/availability", params=window(participants=100))).json()
        assert small["free"] == 16 - 1  # every active room of 47 and region-12 but the booked

        operator = await http.get(
            "/v1/availability", params=window(), headers=bearer(operator_token(region="12"))
        )
        rooms = operator.json()["rooms"]
        assert len(rooms) == 3
        assert [room["pool"] for room in rooms] == ["47", "47", "region-12"]  # best fit first


async def test_availability_is_scoped_and_refuses_bad_fields_by_name(
    start_services: StartServices, intake_url: str
) -> None:
    await start_services("allocator", "intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        other_office = await client.get(
            "/v1/availability", params=window(district_code="4702"), headers=OFFICE
        )
        bangkok = window(district_code="1001")
        region_12 = await client.get(
            "/v1/availability", params=bangkok, headers=bearer(operator_token(region="12"))
        )
        national = await client.get(
            "/v1/availability", params=bangkok, headers=bearer(national_operator_token())
        )
        anonymous = await client.get("/v1/availability", params=window())
        backwards = await client.get(
            "/v1/availability", params=window(START, START - timedelta(hours=1)), headers=OFFICE
        )
        naive = await client.get(
            "/v1/availability",
            params={**window(), "starts_at": "2030-01-01T09:00:00"},
            headers=OFFICE,
        )
        over = await client.get(
            "/v1/availability",
            params=window(START - timedelta(days=9), END - timedelta(days=9)),
            headers=OFFICE,
        )
        far = await client.get(
            "/v1/availability",
            params={
                **window(),
                "starts_at": "9999-12-31T09:00:00+07:00",
                "ends_at": "9999-12-31T10:00:00+07:00",
            },
            headers=OFFICE,
        )

    assert other_office.status_code == 403
    assert "4702" in other_office.json()["detail"]
    assert region_12.status_code == 403
    assert national.status_code == 200
    assert national.json()["free"] == 0  # Bangkok has no pool in the sample
    assert anonymous.status_code == 401
    for refused, field in (
        (backwards, "ends_at"),
        (naive, "starts_at"),
        (over, "ends_at"),
        (far, "starts_at"),
    ):
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"][-1] == field


async def test_the_clerk_s_form_shows_the_free_rooms_hint_in_thai(
    start_services: StartServices, service_env: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    await start_services("allocator", "intake")
    day = START.date()
    typed = {
        "date": f"{day.day}/{day.month}/{day.year + 543}",
        "start_time": "09:00",
        "end_time": "11:00",
        "participants": "๖๐๐",  # Thai digits, as the form accepts them
    }
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="clerk@example.go.th", scope=("--office", "4701")
    ) as clerk:
        form = await clerk.get("/requests/new")
        hint = await clerk.get("/requests/new/free-rooms", params=typed)
        too_many = await clerk.get(
            "/requests/new/free-rooms", params={**typed, "participants": "5000"}
        )
        incomplete = await clerk.get("/requests/new/free-rooms", params={**typed, "date": ""})

    assert 'id="free-rooms-hint"' in form.text
    assert 'data-source="/requests/new/free-rooms"' in form.text
    assert hint.status_code == 200
    assert hint.json()["free"] == 4
    assert "4" in hint.json()["text"]
    assert "ห้อง" in hint.json()["text"]
    assert too_many.json()["free"] == 0
    assert "1000" in too_many.json()["text"]
    assert incomplete.status_code == 204
