"""Support tickets (issue 13, the letter's third duty) through the front door: an office asks
for staff, an operator of its region claims the ticket (who, when) and marks it done; the
office sees each state; support.requested/claimed/done go out on the events exchange without
contact details. Scoped like every admin call: a region-12 operator neither sees nor moves a
Bangkok (province 10) ticket, a national one does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.auth import bearer, national_operator_token, office_token, operator_token
from tests.support.people import csrf_field, signed_in_client
from tests.support.services import StartServices
from tests.support.tap import EventTap

pytestmark = pytest.mark.integration

REGION_12 = bearer(operator_token("somsri", region="12"))
NATIONAL = bearer(national_operator_token())
OFFICE_4701 = bearer(office_token("4701"))
OFFICE_4702 = bearer(office_token("4702"))
OFFICE_1001 = bearer(office_token("1001"))
CONTACT = {"name": "สมหญิง รักงาน", "email": "somying@example.go.th", "phone": "042-711361"}
VISIT = "2026-12-03T08:30:00+07:00"


@pytest_asyncio.fixture
async def front_door(
    start_services: StartServices, intake_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    await start_services("desk", "intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        yield client


async def ask(
    client: httpx.AsyncClient, who: dict[str, str], key: str, **body: Any
) -> httpx.Response:
    payload = {"topic": "ตั้งค่าห้องประชุมและไมโครโฟน", "contact": CONTACT, **body}
    return await client.post(
        "/v1/support-requests", json=payload, headers={**who, "Idempotency-Key": key}
    )


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["ticket_id"] for item in response.json()["items"]]


async def test_an_office_asks_an_operator_claims_and_finishes_and_the_office_sees_it(
    front_door: httpx.AsyncClient, tap: EventTap
) -> None:
    asked = await ask(front_door, OFFICE_4701, "help-1")
    assert asked.status_code == 201, asked.text
    ticket = asked.json()
    ticket_id = ticket["ticket_id"]
    assert ticket["status"] == "open"
    assert (ticket["district_code"], ticket["province_code"]) == ("4701", "47")
    assert ticket["origin"] == "office"
    assert ticket["request_id"] is None
    again = await ask(front_door, OFFICE_4701, "help-1")
    assert again.status_code == 200
    assert again.json()["ticket_id"] == ticket_id

    assert ticket_id in ids(await front_door.get("/v1/admin/support", headers=REGION_12))
    assert ticket_id in ids(await front_door.get("/v1/support-requests", headers=OFFICE_4701))
    assert ticket_id not in ids(await front_door.get("/v1/support-requests", headers=OFFICE_4702))
    other = await front_door.get(f"/v1/support-requests/{ticket_id}", headers=OFFICE_4702)
    assert other.status_code == 404

    done_too_early = await front_door.post(
        f"/v1/admin/support/{ticket_id}/done", json={"note": "x"}, headers=REGION_12
    )
    assert done_too_early.status_code == 409
    claimed = await front_door.post(
        f"/v1/admin/support/{ticket_id}/claim",
        json={"helper": "นายช่าง ใจดี", "visit_at": VISIT},
        headers=REGION_12,
    )
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "claimed"
    seen = (await front_door.get(f"/v1/support-requests/{ticket_id}", headers=OFFICE_4701)).json()
    assert seen["status"] == "claimed"
    assert seen["claim"]["helper"] == "นายช่าง ใจดี"
    assert moment(seen["claim"]["visit_at"]) == moment(VISIT)
    assert ticket_id in ids(
        await front_door.get("/v1/admin/support?status=claimed", headers=REGION_12)
    )
    assert ticket_id not in ids(await front_door.get("/v1/admin/support", headers=REGION_12))

    finished = await front_door.post(
        f"/v1/admin/support/{ticket_id}/done",
        json={"note": "ติดตั้งโปรแกรมและทดสอบเสียงแล้ว"},
        headers=REGION_12,
    )
    assert finished.status_code == 200, finished.text
    assert finished.json()["closure"]["resolution"] == "helped"
    seen = (await front_door.get(f"/v1/support-requests/{ticket_id}", headers=OFFICE_4701)).json()
    assert seen["status"] == "done"
    assert seen["closure"]["note"] == "ติดตั้งโปรแกรมและทดสอบเสียงแล้ว"
    assert ticket_id in ids(
        await front_door.get("/v1/admin/support?status=done", headers=REGION_12)
    )
    for again_path, body in (
        ("claim", {"helper": "x", "visit_at": VISIT}),
        ("done", {"note": "y"}),
    ):
        late = await front_door.post(
            f"/v1/admin/support/{ticket_id}/{again_path}", json=body, headers=REGION_12
        )
        assert late.status_code == 409, again_path

    [requested] = await tap.wait_for("support.requested.47.4701")
    [claimed_event] = await tap.wait_for("support.claimed.47.4701")
    [done_event] = await tap.wait_for("support.done.47.4701")
    assert requested.cloudevent["subject"] == ticket_id
    assert moment(claimed_event.cloudevent["data"]["visit_at"]) == moment(VISIT)
    assert done_event.cloudevent["data"]["resolution"] == "helped"
    for message in (requested, claimed_event, done_event):
        text = message.body.decode()
        for private in (CONTACT["email"], CONTACT["phone"], CONTACT["name"], "นายช่าง", "ติดตั้ง"):
            assert private not in text, f"{private} on {message.routing_key}"
    assert len(tap.with_prefix("support.requested.")) == 1  # the retried ask published nothing


async def test_a_region_12_operator_neither_sees_nor_moves_a_province_10_ticket(
    front_door: httpx.AsyncClient,
) -> None:
    bangkok = (await ask(front_door, OFFICE_1001, "bkk-1")).json()["ticket_id"]
    own = (await ask(front_door, OFFICE_4701, "skn-1")).json()["ticket_id"]

    listed = ids(await front_door.get("/v1/admin/support", headers=REGION_12))
    assert own in listed
    assert bangkok not in listed
    assert (
        await front_door.get(f"/v1/admin/support/{bangkok}", headers=REGION_12)
    ).status_code == 404
    claim = {"helper": "x", "visit_at": VISIT}
    for path, body in (("claim", claim), ("done", {"note": "x"})):
        refused = await front_door.post(
            f"/v1/admin/support/{bangkok}/{path}", json=body, headers=REGION_12
        )
        assert refused.status_code == 404, path
    narrowed = await front_door.get("/v1/admin/support?province=10", headers=REGION_12)
    assert narrowed.status_code == 403

    everywhere = ids(await front_door.get("/v1/admin/support", headers=NATIONAL))
    assert {own, bangkok} <= set(everywhere)
    assert ids(await front_door.get("/v1/admin/support?province=10", headers=NATIONAL)) == [bangkok]
    taken = await front_door.post(
        f"/v1/admin/support/{bangkok}/claim", json=claim, headers=NATIONAL
    )
    assert taken.status_code == 200, taken.text


async def test_two_operators_claiming_at_once_one_wins(front_door: httpx.AsyncClient) -> None:
    ticket_id = (await ask(front_door, OFFICE_4701, "race")).json()["ticket_id"]

    answers = await asyncio.gather(
        *(
            front_door.post(
                f"/v1/admin/support/{ticket_id}/claim",
                json={"helper": f"helper {n}", "visit_at": VISIT},
                headers=bearer(operator_token(f"op{n}", region="12")),
            )
            for n in range(2)
        )
    )

    assert sorted(a.status_code for a in answers) == [200, 409]
    [winner] = [a.json()["claim"]["helper"] for a in answers if a.status_code == 200]
    stored = (await front_door.get(f"/v1/admin/support/{ticket_id}", headers=NATIONAL)).json()
    assert stored["claim"]["helper"] == winner


async def test_bad_input_names_the_field_and_offices_cannot_work_the_queue(
    front_door: httpx.AsyncClient,
) -> None:
    ticket_id = (await ask(front_door, OFFICE_4701, "bad-input")).json()["ticket_id"]

    cases: list[tuple[str, dict[str, str], dict[str, Any], int, list[str] | None]] = [
        ("claim", REGION_12, {"helper": "x"}, 422, ["body", "visit_at"]),
        ("claim", REGION_12, {"helper": " ", "visit_at": VISIT}, 422, ["body", "helper"]),
        ("claim", REGION_12, {"helper": "x", "visit_at": "2026-12-03T08:30"}, 422, None),
        ("done", REGION_12, {"note": "  "}, 422, ["body", "note"]),
        ("claim", OFFICE_4701, {"helper": "x", "visit_at": VISIT}, 403, None),
    ]
    for action, who, body, expected, loc in cases:
        answer = await front_door.post(
            f"/v1/admin/support/{ticket_id}/{action}", json=body, headers=who
        )
        assert answer.status_code == expected, (action, body, answer.text)
        if loc is not None:
            assert answer.json()["detail"][0]["loc"] == loc
    assert (await front_door.get("/v1/admin/support", headers=OFFICE_4701)).status_code == 403

    assert (await ask(front_door, OFFICE_4701, "other", district_code="4702")).status_code == 403
    no_topic = await ask(front_door, OFFICE_4701, "blank", topic="")
    assert no_topic.status_code == 422
    assert no_topic.json()["detail"][0]["loc"] == ["body", "topic"]
    bad_mail = await ask(front_door, OFFICE_4701, "mail", contact={**CONTACT, "email": "nope"})
    assert bad_mail.status_code == 422
    assert bad_mail.json()["detail"][0]["loc"][:3] == ["body", "contact", "email"]
    unnamed = await ask(front_door, REGION_12, "op-no-district")
    assert unnamed.status_code == 422
    assert unnamed.json()["detail"][0]["loc"] == ["body", "district_code"]
    for_office = await ask(front_door, REGION_12, "op-for-4702", district_code="4702")
    assert for_office.status_code == 201
    assert (await ask(front_door, REGION_12, "op-for-1001", district_code="1001")).status_code == (
        403
    )
    still_open = (await front_door.get(f"/v1/admin/support/{ticket_id}", headers=NATIONAL)).json()
    assert still_open["status"] == "open", json.dumps(still_open)


async def test_a_clerk_asks_for_staff_on_the_support_page_once_and_sees_the_ticket(
    front_door: httpx.AsyncClient, service_env: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    """The signed-in person of office 4701 asks on /support (CSRF, Idempotency-Key: the same
    form posted twice asks once); a bad e-mail is a Thai message beside the field, keeping
    what was typed; the office's tickets are listed with their state."""
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="clerk-h@example.go.th", scope=("--office", "4701")
    ) as clerk:
        page = await clerk.get("/support")
        assert page.status_code == 200
        assert 'value="clerk-h@example.go.th"' in page.text  # the contact, pre-filled
        fields = {
            "csrftoken": csrf_field(page.text),
            "idempotency_key": "form-1",
            "topic": "ขอช่วยติดตั้งกล้องห้องประชุม",
            "contact_name": "ทดสอบ ระบบ",
            "contact_email": "not-an-address",
            "contact_phone": "042-711361",
        }
        wrong = await clerk.post("/support", data=fields)
        assert wrong.status_code == 422
        assert 'id="contact_email-error"' in wrong.text
        assert "ขอช่วยติดตั้งกล้องห้องประชุม" in wrong.text  # kept
        fields["contact_email"] = "clerk-h@example.go.th"
        for _ in range(2):  # a double click
            sent = await clerk.post("/support", data=fields)
            assert sent.status_code == 303
        listed = await clerk.get(sent.headers["location"])
        assert 'id="support-asked"' in listed.text
        assert listed.text.count("ขอช่วยติดตั้งกล้องห้องประชุม") == 1
        assert "รอเจ้าหน้าที่" in listed.text
    queue = ids(await front_door.get("/v1/admin/support", headers=REGION_12))
    mine = ids(await front_door.get("/v1/support-requests", headers=OFFICE_4701))
    assert len(mine) == 1
    assert mine[0] in queue
