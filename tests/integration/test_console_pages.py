"""The operators' console over HTTP, signed in like a browser (cookie, CSRF token): every page
answers in Thai for a region-12 operator with its data from the owners' internal APIs, an
office's person is turned away, the live feed takes the session cookie, and invitations stay
within the operator's provinces and are audited."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.auth import bearer, office_token
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


async def test_the_support_queue_claims_and_finishes_a_ticket_in_thai(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    tmp_path: Path,
) -> None:
    """Open -> claimed (who, when: a BE date typed like a clerk would) -> done, through the
    console's forms; a bad visit date is a Thai message and claims nothing; a Bangkok ticket
    never shows to a region-12 operator."""
    await start_services("desk", "intake")
    contact = {"name": "สมหญิง รักงาน", "email": "somying@example.go.th", "phone": "042-711361"}
    tickets = {}
    async with httpx.AsyncClient(base_url=intake_url) as offices:
        for district in ("4701", "1001"):
            asked = await offices.post(
                "/v1/support-requests",
                json={"topic": f"ติดตั้งโปรแกรม {district}", "contact": contact},
                headers=bearer(office_token(district)),
            )
            assert asked.status_code == 201, asked.text
            tickets[district] = asked.json()["ticket_id"]
    own = tickets["4701"]

    async with signed_in_client(
        service_env, tmp_path, intake_url, email="op12s@example.go.th", scope=REGION_12
    ) as operator:
        queue = await operator.get("/console/support")
        assert queue.status_code == 200
        assert f'id="ticket-{own}"' in queue.text
        assert "ติดตั้งโปรแกรม 4701" in queue.text
        assert "ติดตั้งโปรแกรม 1001" not in queue.text
        assert "รอเจ้าหน้าที่" in queue.text  # the state, in Thai
        assert "042-711361" in queue.text  # operators call the office
        token = csrf_field(queue.text)

        bad = await operator.post(
            f"/console/support/{own}/claim",
            data={
                "csrftoken": token,
                "helper": "นายช่าง",
                "visit_date": "31/2/2569",
                "visit_time": "08:30",
            },
        )
        assert bad.status_code == 422
        assert "จะไปช่วยเมื่อใด" in bad.text
        assert f'id="claim-{own}"' in bad.text  # still open

        claimed = await operator.post(
            f"/console/support/{own}/claim",
            data={
                "csrftoken": token,
                "helper": "นายช่าง ใจดี",
                "visit_date": "3/12/2569",
                "visit_time": "08:30",
            },
        )
        assert claimed.status_code == 303
        assert claimed.headers["location"] == "/console/support?status=claimed&done=claimed"
        page = await operator.get(claimed.headers["location"])
        assert "นายช่าง ใจดี" in page.text
        assert "3 ธ.ค. 2569 08:30" in page.text  # Buddhist era, Bangkok time
        again = await operator.post(
            f"/console/support/{own}/claim",
            data={
                "csrftoken": token,
                "helper": "x",
                "visit_date": "3/12/2569",
                "visit_time": "09:00",
            },
        )
        assert again.status_code == 409

        done = await operator.post(
            f"/console/support/{own}/done", data={"csrftoken": token, "note": "ทดสอบเสียงแล้ว"}
        )
        assert done.status_code == 303
        finished = await operator.get("/console/support?status=done")
        assert "ทดสอบเสียงแล้ว" in finished.text
        assert f'id="ticket-{own}"' in finished.text

        outside = await operator.post(
            f"/console/support/{tickets['1001']}/claim",
            data={
                "csrftoken": token,
                "helper": "x",
                "visit_date": "3/12/2569",
                "visit_time": "09:00",
            },
        )
        assert outside.status_code == 404


async def test_the_clerks_request_page_shows_its_support_ticket(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """The request page asks the desk for the request's ticket (#support-ticket); before the
    desk has one it says only that staff were asked for."""
    await start_services("desk", "intake")
    body = request_body("4701", title="ประชุมขอเจ้าหน้าที่", needs_support=True)
    request_id = (await http.post("/v1/requests", json=body)).json()["request_id"]
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="clerk-s@example.go.th", scope=("--office", "4701")
    ) as clerk:
        page = await clerk.get(f"/requests/{request_id}")
        assert page.status_code == 200
        assert 'id="support-ticket"' in page.text
        assert "ขอแล้ว" in page.text or "รอเจ้าหน้าที่" in page.text
