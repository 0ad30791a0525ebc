"""The operators' console over HTTP, signed in like a browser (cookie, CSRF token): every page
answers in Thai for a region-12 operator with its data from the owners' internal APIs, an
office's person is turned away, the live feed takes the session cookie, and invitations stay
within the operator's provinces and are audited."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.people import csrf_field, signed_in_client
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices

pytestmark = pytest.mark.integration

REGION_12 = ("--operator", "--region", "12")


async def test_a_region_operator_sees_every_console_page_and_the_day_of_a_booking(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    await start_services("allocator", "notifier", "desk", "intake")
    body = request_body("4701", title="ประชุมวางแผนรับมือภัยหนาว")
    submitted = (await http.post("/v1/requests", json=body)).json()
    await wait_status(http, submitted["request_id"], "delivered")
    day = body["starts_at"][:10]
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="op12@example.go.th", scope=REGION_12
    ) as operator:
        feed = await operator.get("/console")
        assert feed.status_code == 200
        assert "ความเคลื่อนไหวสด" in feed.text
        assert "ที่ทำการปกครองอำเภอเมืองสกลนคร" in feed.text  # the offices' Thai names
        assert "ที่ทำการปกครองอำเภอพระนคร" not in feed.text  # Bangkok is not region 12's

        grid = await operator.get("/console/day", params={"province": "47", "date": day})
        assert grid.status_code == 200
        assert "ประชุมวางแผนรับมือภัยหนาว" in grid.text
        assert f'href="/console/requests/{submitted["request_id"]}"' in grid.text

        page = await operator.get(f"/console/requests/{submitted['request_id']}")
        assert page.status_code == 200
        assert "ประชุมวางแผนรับมือภัยหนาว" in page.text
        assert 'id="cancel-request"' in page.text

        brief = await operator.get(f"/console/requests/{submitted['request_id']}/brief")
        assert brief.json()["title"] == "ประชุมวางแผนรับมือภัยหนาว"

        for path in (
            "/console/requests",
            "/console/support",
            "/console/stuck",
            "/console/dead-letters",
            "/console/utilisation",
            "/console/audit",
            "/console/invite",
        ):
            answer = await operator.get(path)
            assert answer.status_code == 200, path
            assert 'lang="th"' in answer.text

        async with operator.stream("GET", "/v1/admin/feed") as stream:  # the session cookie
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")

        cancelled = await operator.post(
            f"/console/requests/{submitted['request_id']}/cancel",
            data={"csrftoken": csrf_field(page.text)},
        )
        assert cancelled.status_code == 303
        assert (await wait_status(http, submitted["request_id"], "cancelled"))["status"]


async def test_an_office_person_is_turned_away_and_invites_stay_within_the_provinces(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    tmp_path: Path,
) -> None:
    await start_services("desk", "intake")
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="clerk@example.go.th", scope=("--office", "4701")
    ) as clerk:
        assert (await clerk.get("/console")).status_code == 403
        assert (await clerk.get("/v1/admin/feed")).status_code == 403
    async with httpx.AsyncClient(base_url=intake_url) as nobody:
        assert (await nobody.get("/v1/admin/feed")).status_code == 401
        assert (await nobody.get("/console")).status_code == 303

    async with signed_in_client(
        service_env, tmp_path, intake_url, email="op12b@example.go.th", scope=REGION_12
    ) as operator:
        form = await operator.get("/console/invite")
        token = csrf_field(form.text)
        email = f"new-{uuid.uuid4().hex[:6]}@example.go.th"
        invited = await operator.post(
            "/console/invite",
            data={
                "csrftoken": token,
                "name": "สมหญิง",
                "email": email,
                "kind": "office",
                "district": "4702",
            },
        )
        assert invited.status_code == 200
        assert "/invite/" in invited.text
        outside = await operator.post(
            "/console/invite",
            data={
                "csrftoken": token,
                "name": "ก",
                "email": "bkk@example.go.th",
                "kind": "office",
                "district": "1001",
            },
        )
        assert outside.status_code == 403
        assert "10" in outside.text
        national = await operator.post(
            "/console/invite",
            data={
                "csrftoken": token,
                "name": "ข",
                "email": "p10@example.go.th",
                "kind": "province",
                "province": "10",
            },
        )
        assert national.status_code == 403
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("intake-*.log"))
    assert '"event": "audit.user_invite"' in logs
    assert email in logs
