"""No passcode on any topic an integration can bind, none in any log (issue 6)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest

from tests.e2e.test_published_contract import reassign_to_a_free_room
from tests.support.auth import bearer, office_token
from tests.support.requests import request_body, tomorrow_at, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from vcs_shared.events import EVENT_TYPES
from vcs_shared.thaitime import BANGKOK
from vcs_tools.devstack import ServiceProcess, SmtpSink

pytestmark = pytest.mark.e2e


async def test_the_passcode_reaches_the_owner_and_no_topic_and_no_log(
    start_services: StartServices, http: httpx.AsyncClient, tap: EventTap
) -> None:
    processes: list[ServiceProcess] = await start_services()

    request_id = (await http.post("/v1/requests", json=request_body("4701"))).json()["request_id"]
    final = await wait_status(http, request_id, "delivered")
    passcode = final["assignment"]["passcode"]
    await tap.wait_for("credentials.delivered")
    cancelled = await http.post(f"/v1/requests/{request_id}/cancel")
    assert cancelled.status_code == 200
    await tap.wait_for("room.released")

    assert len(passcode) >= 6
    assert f"pwd={passcode}" in final["assignment"]["join_url"]
    kinds = {m.routing_key.rsplit(".", 2)[0] for m in tap.messages}
    assert {"request.submitted", "room.assigned", "credentials.delivered"} <= kinds
    for message in tap.messages:
        assert passcode.encode() not in message.body, message.routing_key
        assert passcode not in repr(message.headers)
        assert "pwd=" not in message.body.decode()
    [assigned] = tap.with_prefix("room.assigned")
    assert assigned.cloudevent["data"]["join_url"].startswith("https://")
    assert "?" not in assigned.cloudevent["data"]["join_url"]

    for process in processes:
        process.stop()
        log = process.log_path.read_text()
        assert log, f"{process.name} logged nothing"
        assert passcode not in log, f"passcode in {process.name}'s log"


async def test_no_contact_detail_in_clear_on_any_event_type(
    start_services: StartServices, http: httpx.AsyncClient, tap: EventTap, smtp_sink: SmtpSink
) -> None:
    """Issue 11.5: an integration binding ``#`` sees no contact's e-mail address, phone number
    or name, on every event type; the notifier still mails the contact (unsealed). The
    first meeting starts in two minutes, so its reminder (110 s before) is sent too."""
    await start_services(extra_env={"VCS_REMINDERS": "110s", "VCS_REMINDER_POLL_SECONDS": "0.2"})
    contact = {
        "name": "สมปอง ลับเฉพาะ",
        "email": "sompong.private@example.go.th",
        "phone": "042-987654",
    }
    starts_at = (datetime.now(BANGKOK) + timedelta(minutes=2)).replace(microsecond=0)
    delivered = await http.post(
        "/v1/requests", json=request_body("4701", starts_at=starts_at, contact=contact)
    )
    delivered_id = delivered.json()["request_id"]
    await wait_status(http, delivered_id, "delivered")
    await tap.wait_for("reminder.sent", timeout=90)
    await reassign_to_a_free_room(http, delivered_id)
    await tap.wait_for("room.reassigned")
    assert (await http.post(f"/v1/requests/{delivered_id}/cancel")).status_code == 200
    rejected = await http.post(
        "/v1/requests", json=request_body("4702", participants=100_000, contact=contact)
    )
    await wait_status(http, rejected.json()["request_id"], "rejected")
    smtp_sink.refuse("554 5.7.1 relay access denied")
    failed = await http.post("/v1/requests", json=request_body("4703", contact=contact))
    await wait_status(http, failed.json()["request_id"], "delivery_failed")
    ticket = await http.post(
        "/v1/support-requests",
        json={"topic": "ไมโครโฟนไม่ทำงาน", "contact": contact},
        headers={**bearer(office_token("4701")), "Idempotency-Key": "help-secrecy"},
    )
    assert ticket.status_code == 201, ticket.text
    ticket_id = ticket.json()["ticket_id"]
    visit = {"helper": "นายช่าง ใจดี", "visit_at": tomorrow_at(9).isoformat()}
    claimed = await http.post(f"/v1/admin/support/{ticket_id}/claim", json=visit)
    assert claimed.status_code == 200, claimed.text
    done = await http.post(f"/v1/admin/support/{ticket_id}/done", json={"note": "เรียบร้อย"})
    assert done.status_code == 200, done.text
    await tap.wait_for("room.released")
    await tap.wait_for("support.done")

    seen = {m.cloudevent["type"] for m in tap.messages}
    assert seen == set(EVENT_TYPES)  # every type that is published, each version
    [mail] = [m for m in smtp_sink.messages if str(m["X-VCS-Request-Id"]) == delivered_id][:1]
    assert contact["email"] in str(mail["To"])  # the notifier opened the sealed contact
    secrets = [contact["email"], "sompong.private", contact["phone"], "987654", contact["name"]]
    for message in tap.messages:
        text = message.body.decode() + repr(message.headers)
        escaped = json.dumps(contact["name"])  # the name as JSON escapes it
        for secret in [*secrets, escaped.strip('"')]:
            assert secret not in text, (message.cloudevent["type"], secret)
        assert "@" not in json.dumps(message.cloudevent["data"]), message.cloudevent["type"]
