"""What the intake refuses at once, before anything is stored (issue 11, points 2, 3 and 6):
titles that are not one line, windows it can already tell are wrong, a blank contact name,
an office over its quota of upcoming bookings; and a meeting that is over cannot be cancelled.

The intake runs as its own process against the real broker and store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.auth import bearer, office_token
from tests.support.people import post_form, signed_in_client
from tests.support.requests import request_body, tomorrow_at
from tests.support.services import StartServices
from vcs_intake.domain import RequestState
from vcs_intake.store import MongoRequestStore
from vcs_shared.events import Contact, Urgency
from vcs_shared.store import Document, database_name
from vcs_shared.thaitime import BANGKOK

pytestmark = pytest.mark.integration

HORIZON_DAYS = 30
QUOTA = 3

CONTROL_CHARACTERS = ["\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\t", "\x00", "\x1b"]


@pytest.fixture
async def intake(start_services: StartServices) -> None:
    await start_services(
        "intake",
        extra_env={
            "VCS_BOOKING_HORIZON_DAYS": str(HORIZON_DAYS),
            "VCS_MAX_OPEN_REQUESTS_PER_OFFICE": str(QUOTA),
        },
    )


@pytest.fixture
def requests(mongo: AsyncMongoClient[Document], namespace: str) -> Any:
    return mongo[database_name(namespace, "intake")]["requests"]


def _error_at(response: httpx.Response, loc: list[str]) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    errors: list[dict[str, Any]] = response.json()["detail"]
    matching = [e for e in errors if list(e["loc"]) == loc]
    assert matching, f"no error at {loc}: {errors}"
    return matching[0]


def _window(starts_at: str, ends_at: str) -> dict[str, Any]:
    body = request_body()
    body.update(starts_at=starts_at, ends_at=ends_at)
    return body


@pytest.mark.usefixtures("intake")
async def test_a_title_that_is_not_one_line_is_refused_naming_title(
    http: httpx.AsyncClient, requests: Any
) -> None:
    for char in CONTROL_CHARACTERS:
        body = request_body(title=f"ประชุม{char}Bcc: everyone@example.go.th")
        error = _error_at(await http.post("/v1/requests", json=body), ["body", "title"])
        assert "one line" in error["msg"], (repr(char), error)
    trailing = await http.post("/v1/requests", json=request_body(title="ประชุม\n"))
    assert _error_at(trailing, ["body", "title"])

    assert await requests.count_documents({}) == 0
    thai_with_a_zero_width_space = request_body(title="ประชุม\u200bติดตาม")
    assert (await http.post("/v1/requests", json=thai_with_a_zero_width_space)).status_code == 202


@pytest.mark.usefixtures("intake")
async def test_windows_the_intake_can_tell_are_wrong_are_422_naming_the_field(
    http: httpx.AsyncClient, requests: Any
) -> None:
    now = datetime.now(BANGKOK).replace(microsecond=0)
    beyond = now + timedelta(days=HORIZON_DAYS + 1)
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (
            "in the past",
            _window((now - timedelta(hours=3)).isoformat(), (now - timedelta(hours=1)).isoformat()),
            "starts_at",
            "past",
        ),
        (
            "beyond the horizon",
            _window(beyond.isoformat(), (beyond + timedelta(hours=1)).isoformat()),
            "starts_at",
            f"{HORIZON_DAYS} days",
        ),
        (
            "ends before it starts",
            _window(tomorrow_at(11).isoformat(), tomorrow_at(9).isoformat()),
            "ends_at",
            "after starts_at",
        ),
        (
            "longer than the maximum",
            _window(tomorrow_at(6).isoformat(), tomorrow_at(18, 5).isoformat()),
            "ends_at",
            "12 hours",
        ),
        (
            "year 9999",
            _window("9999-12-31T09:00:00+07:00", "9999-12-31T11:00:00+07:00"),
            "starts_at",
            f"{HORIZON_DAYS} days",
        ),
        (
            "year 1 before UTC",
            _window("0001-01-01T00:00:00+07:00", "0001-01-01T02:00:00+07:00"),
            "starts_at",
            "outside the times",
        ),
        (
            "last moment of year 9999 behind UTC",
            _window("9999-12-31T20:00:00+07:00", "9999-12-31T23:00:00-05:00"),
            "ends_at",
            "outside the times",
        ),
    ]
    for label, body, field, why in cases:
        response = await http.post("/v1/requests", json=body)
        error = _error_at(response, ["body", field])
        assert why in error["msg"], (label, error)
    assert await requests.count_documents({}) == 0

    within_the_clock_skew = _window(
        (now - timedelta(minutes=2)).isoformat(), (now + timedelta(hours=1)).isoformat()
    )
    assert (await http.post("/v1/requests", json=within_the_clock_skew)).status_code == 202
    last_day = now + timedelta(days=HORIZON_DAYS - 1)
    at_the_horizon = _window(last_day.isoformat(), (last_day + timedelta(hours=12)).isoformat())
    assert (await http.post("/v1/requests", json=at_the_horizon)).status_code == 202


@pytest.mark.usefixtures("intake")
async def test_a_contact_name_of_only_spaces_is_refused(
    http: httpx.AsyncClient, requests: Any
) -> None:
    for name in ["   ", "\u3000", "สมชาย\nBcc: x@example.go.th"]:
        contact = {"name": name, "email": "somchai@example.go.th", "phone": "042-711360"}
        response = await http.post("/v1/requests", json=request_body(contact=contact))
        assert _error_at(response, ["body", "contact", "name"])
    assert await requests.count_documents({}) == 0


@pytest.mark.usefixtures("intake")
async def test_an_office_holds_at_most_its_quota_of_upcoming_bookings_operators_are_not_limited(
    http: httpx.AsyncClient, requests: Any
) -> None:
    office = bearer(office_token("4701"))
    for day in range(1, QUOTA + 1):
        headers = {**office, "Idempotency-Key": f"quota-{day}"}
        body = request_body(starts_at=tomorrow_at(9, days=day))
        assert (await http.post("/v1/requests", json=body, headers=headers)).status_code == 202

    one_more = request_body(starts_at=tomorrow_at(9, days=QUOTA + 1))
    refused = await http.post(
        "/v1/requests", json=one_more, headers={**office, "Idempotency-Key": "quota-extra"}
    )
    assert refused.status_code == 429, refused.text
    detail = refused.json()["detail"]
    assert detail["type"] == "quota_exceeded"
    assert detail["limit"] == QUOTA
    assert "VCS_MAX_OPEN_REQUESTS_PER_OFFICE" in detail["msg"]
    assert await requests.count_documents({}) == QUOTA

    retry = await http.post(
        "/v1/requests",
        json=request_body(starts_at=tomorrow_at(9, days=1)),
        headers={**office, "Idempotency-Key": "quota-1"},
    )
    assert retry.status_code == 200  # a retry of a stored request is answered, not refused

    other_office = await http.post(
        "/v1/requests", json=request_body("4702"), headers=bearer(office_token("4702"))
    )
    assert other_office.status_code == 202
    by_an_operator = await http.post("/v1/requests", json=one_more)  # national operator
    assert by_an_operator.status_code == 202
    assert await requests.count_documents({"district_code": "4701"}) == QUOTA + 1

    first = (await http.get("/v1/requests", headers=office, params={"limit": 100})).json()
    cancelled = first["items"][-1]["request_id"]
    assert (await http.post(f"/v1/requests/{cancelled}/cancel")).status_code == 200
    still_full = await http.post(
        "/v1/requests", json=one_more, headers={**office, "Idempotency-Key": "quota-extra"}
    )
    assert still_full.status_code == 429  # the operator's booking counts for the office too
    assert (
        await http.post(f"/v1/requests/{first['items'][0]['request_id']}/cancel")
    ).status_code == 200
    freed = await http.post(
        "/v1/requests", json=one_more, headers={**office, "Idempotency-Key": "quota-extra"}
    )
    assert freed.status_code == 202


@pytest.mark.usefixtures("intake")
async def test_a_meeting_that_has_ended_cannot_be_cancelled(
    http: httpx.AsyncClient, mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    ended = datetime.now(UTC) - timedelta(hours=1)
    record = RequestState(
        request_id="ended-meeting-1",
        district_code="4701",
        province_code="47",
        title="ประชุมเมื่อเช้า",
        starts_at=ended - timedelta(hours=2),
        ends_at=ended,
        participants=20,
        urgency=Urgency.normal,
        needs_support=False,
        contact=Contact(name="สมชาย ใจดี", email="somchai@example.go.th", phone="042-711360"),
        submitted_at=ended - timedelta(days=1),
        idempotency_key="4701:ended-meeting-1",
        fingerprint="-",
    )
    store = MongoRequestStore(mongo[database_name(namespace, "intake")])
    await store.insert(record, record.submitted("not-opened-here"))

    refused = await http.post(f"/v1/requests/{record.request_id}/cancel")

    assert refused.status_code == 409
    assert "already ended" in refused.json()["detail"]
    stored = await store.get(record.request_id)
    assert stored is not None
    assert stored.status.value == "submitted"


async def test_the_clerk_s_form_over_the_quota_says_so_in_thai(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    await start_services("intake", extra_env={"VCS_MAX_OPEN_REQUESTS_PER_OFFICE": "1"})
    office = bearer(office_token("4701"))
    assert (await http.post("/v1/requests", json=request_body(), headers=office)).status_code == 202
    day = tomorrow_at(9, days=2)
    typed = {
        "title": "ประชุมเพิ่ม",
        "date": f"{day.day}/{day.month}/{day.year + 543}",
        "start_time": "09:00",
        "end_time": "10:00",
        "participants": "20",
        "urgency": "normal",
        "contact_name": "สมศรี ใจดี",
        "contact_email": "somsri@example.go.th",
        "contact_phone": "042-711360",
    }
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="clerk@example.go.th", scope=("--office", "4701")
    ) as clerk:
        refused = await post_form(clerk, "/requests/new", "/requests/new", typed)

    assert refused.status_code == 429
    assert "จำนวนสูงสุดที่จองไว้พร้อมกันได้" in refused.text
    assert "1 รายการ" in refused.text
    assert 'value="ประชุมเพิ่ม"' in refused.text  # what was typed is kept
