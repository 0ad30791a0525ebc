"""An operator sends the credentials again (issue 13): ``POST /v1/admin/requests/{id}/redeliver``
on the intake's address, forwarded to the notifier, which owns the deliveries.

A relay that refuses the mail makes the request ``delivery_failed`` with
``credentials.failed`` (never a silent dead letter); once the relay accepts again, a
redelivery by an operator of the request's region delivers, and the request becomes
``delivered``. The notifier applies the caller's provinces: a region-12 operator gets
404 for a request of Bangkok (province 10), the national role does not.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.auth import bearer, national_operator_token, office_token, operator_token
from tests.support.people import post_form, signed_in_client
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.e2e

REGION_12 = bearer(operator_token("somsri", region="12"))
NATIONAL = bearer(national_operator_token())
REGION_12_PERSON = ("--operator", "--region", "12")
REFUSAL = "550 5.1.1 <somchai@example.go.th>: mailbox unavailable"
BANGKOK_POOL = (
    "meeting_id,capacity,pool,passcode,join_url,active\n"
    "10000000001,300,10,bkk-s3cret,https://zoom.example/j/10000000001,\n"
)


def redeliver(request_id: str) -> str:
    return f"/v1/admin/requests/{request_id}/redeliver"


async def test_redeliver_after_an_smtp_failure_delivers(
    start_services: StartServices, http: httpx.AsyncClient, smtp_sink: SmtpSink, tap: EventTap
) -> None:
    await start_services("intake", "allocator", "notifier")
    smtp_sink.refuse(REFUSAL)

    submitted = await http.post("/v1/requests", json=request_body("4701"))
    request_id = submitted.json()["request_id"]
    failed = await wait_status(http, request_id, "delivery_failed")

    assert "550" in failed["delivery_error"]
    [failure] = await tap.wait_for("credentials.failed")
    assert "mailbox unavailable" in failure.cloudevent["data"]["error"]
    assert smtp_sink.messages == []
    assert smtp_sink.refused == 1

    smtp_sink.refuse(None)
    answer = await http.post(redeliver(request_id), headers=REGION_12)

    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "delivered"
    assert answer.json()["error"] is None
    delivered = await wait_status(http, request_id, "delivered")
    [mail] = smtp_sink.messages
    assert mail["To"].addresses[0].addr_spec == "somchai@example.go.th"
    body = mail.get_body(("plain",))
    assert body is not None
    assert delivered["assignment"]["passcode"] in body.get_content()
    [event] = await tap.wait_for("credentials.delivered")
    assert event.cloudevent["subject"] == request_id
    assert len(tap.with_prefix("credentials.failed")) == 1


async def test_a_failed_redelivery_is_answered_and_announced_and_the_office_may_try_again(
    start_services: StartServices, http: httpx.AsyncClient, smtp_sink: SmtpSink, tap: EventTap
) -> None:
    """The office lost a delivered mail; the relay now refuses: the operator hears why at
    once, the failure is published and shows as ``delivery_failed`` (a channel failing after
    another delivered counts as a failure operators see); a redelivery that works ends it."""
    await start_services("intake", "allocator", "notifier")
    request_id = (await http.post("/v1/requests", json=request_body("4701"))).json()["request_id"]
    await wait_status(http, request_id, "delivered")
    smtp_sink.refuse(REFUSAL)

    answer = await http.post(redeliver(request_id), headers=REGION_12)

    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "failed"
    assert "550" in answer.json()["error"]
    await tap.wait_for("credentials.failed")
    await wait_status(http, request_id, "delivery_failed")
    smtp_sink.refuse(None)
    again = await http.post(redeliver(request_id), headers=REGION_12)
    assert again.json()["state"] == "delivered"
    assert len(smtp_sink.messages) == 2
    await wait_status(http, request_id, "delivered")


async def test_redeliver_is_bound_to_the_operators_provinces(
    start_services: StartServices, intake_url: str, http: httpx.AsyncClient, tap: EventTap
) -> None:
    await start_services("intake", "allocator", "notifier")
    loaded = await http.post(
        "/v1/admin/pools/reload", content=BANGKOK_POOL, headers={"content-type": "text/csv"}
    )
    assert loaded.status_code == 200, loaded.text
    bangkok = (await http.post("/v1/requests", json=request_body("1001"))).json()["request_id"]
    await wait_status(http, bangkok, "delivered")

    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        outside = await client.post(redeliver(bangkok), headers=REGION_12)
        office = await client.post(redeliver(bangkok), headers=bearer(office_token("1001")))
        unknown = await client.post(redeliver("no-such-request"), headers=NATIONAL)
        national = await client.post(redeliver(bangkok), headers=NATIONAL)

    assert outside.status_code == 404, outside.text
    assert office.status_code == 403
    assert unknown.status_code == 404
    assert national.status_code == 200
    assert national.json()["state"] == "delivered"
    assert len(tap.with_prefix("credentials.delivered.10.1001")) == 2


async def test_a_rejected_or_cancelled_request_has_nothing_to_send_again(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake", "allocator", "notifier")
    too_big = (await http.post("/v1/requests", json=request_body(participants=5000))).json()
    cancelled = (await http.post("/v1/requests", json=request_body("4702"))).json()
    await wait_status(http, too_big["request_id"], "rejected")
    await wait_status(http, cancelled["request_id"], "delivered")
    await http.post(f"/v1/requests/{cancelled['request_id']}/cancel")
    await wait_status(http, cancelled["request_id"], "cancelled")

    rejected = await http.post(redeliver(too_big["request_id"]), headers=REGION_12)
    assert rejected.status_code == 409
    assert "no room" in rejected.json()["detail"]

    async def released() -> httpx.Response | None:
        answer = await http.post(redeliver(cancelled["request_id"]), headers=REGION_12)
        return answer if answer.status_code == 409 else None

    answer = await eventually(released, what="the release reaching the notifier")
    assert "cancelled" in answer.json()["detail"]


async def test_the_console_request_page_sends_the_credentials_again(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    """A region-12 operator signed in at the console: a failed delivery's page has the button;
    pressing it while the relay still refuses says why in Thai, pressing it again delivers."""
    await start_services("intake", "allocator", "notifier")
    smtp_sink.refuse(REFUSAL)
    request_id = (await http.post("/v1/requests", json=request_body("4701"))).json()["request_id"]
    await wait_status(http, request_id, "delivery_failed")
    page_path = f"/console/requests/{request_id}"
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="op12@example.go.th", scope=REGION_12_PERSON
    ) as operator:
        page = await operator.get(page_path)
        assert 'id="redeliver-request"' in page.text

        refused = await post_form(operator, page_path, f"{page_path}/redeliver", {})
        assert refused.status_code == 502
        assert "ส่งรายละเอียดการเข้าประชุมอีกครั้งไม่สำเร็จ" in refused.text
        assert "mailbox unavailable" in refused.text

        smtp_sink.refuse(None)
        sent = await post_form(operator, page_path, f"{page_path}/redeliver", {})
        assert sent.status_code == 303
        shown = await operator.get(sent.headers["location"])
        assert "ส่งรายละเอียดการเข้าประชุมอีกครั้งแล้ว" in shown.text
    assert (await wait_status(http, request_id, "delivered"))["status"] == "delivered"
    assert len(smtp_sink.messages) == 1
