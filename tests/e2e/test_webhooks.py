"""Webhook and LINE delivery end to end (issue 15): the services running, an office's
receiver and a fake LINE as real local HTTP servers, everything through the intake's front
door (``/v1/offices/{district}/webhook`` and ``/line`` are forwarded to the notifier).

The tests allow loopback with ``VCS_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8``, as an operator
would allow an office's intranet; every other internal address is still refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.auth import bearer, national_operator_token, office_token, operator_token
from tests.support.http_fakes import FakeLine, Received, WebhookReceiver
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_shared.events import RequestCancelled, RequestSubmitted, RoomAssigned
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.e2e

OFFICE_4701 = bearer(office_token("4701"))
REGION_12 = bearer(operator_token("somsri", region="12"))
NATIONAL = bearer(national_operator_token())
LOOPBACK = {
    "VCS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "VCS_WEBHOOK_RETRY_INITIAL_SECONDS": "0.2",
}
SUBMITTED = RequestSubmitted.cloudevent_type()
ASSIGNED = RoomAssigned.cloudevent_type()
LINE_TOKEN = "fake-line-channel-access-token"
GROUP = "C" + "0123456789abcdef" * 2


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


async def register(
    http: httpx.AsyncClient, url: str, district: str = "4701", headers: dict[str, str] = OFFICE_4701
) -> httpx.Response:
    return await http.put(f"/v1/offices/{district}/webhook", json={"url": url}, headers=headers)


def payloads(received: list[Received], secret: str) -> list[dict[str, Any]]:
    """Each message verified with the ``standardwebhooks`` package (raises if one fails)."""
    return [WebhookReceiver().verified(request, secret) for request in received]


async def test_registration_is_scoped_and_internal_addresses_are_refused(
    start_services: StartServices, http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    await start_services("intake", "notifier", "desk", extra_env=LOOPBACK)

    own = await register(http, receiver.url)
    assert own.status_code == 200, own.text
    assert own.json()["secret"].startswith("whsec_")
    assert own.json()["previous_secret_valid_until"] is None
    shown = await http.get("/v1/offices/4701/webhook", headers=OFFICE_4701)
    assert shown.json()["url"] == receiver.url
    assert "secret" not in shown.json()  # the secret is answered once, never shown again

    other = await register(http, receiver.url, district="4702")
    assert other.status_code == 403, other.text
    bangkok = await register(http, receiver.url, district="1001", headers=REGION_12)
    assert bangkok.status_code == 403, bangkok.text
    assert "outside your provinces" in bangkok.json()["detail"]
    assert (
        await register(http, receiver.url, district="4702", headers=REGION_12)
    ).status_code == 200
    assert (
        await register(http, receiver.url, district="1001", headers=NATIONAL)
    ).status_code == 200
    assert (
        await register(http, receiver.url, district="9999", headers=NATIONAL)
    ).status_code == 404
    assert (await http.get("/v1/offices/1001/webhook", headers=REGION_12)).status_code == 403

    for url in (
        "http://10.0.0.8/hook",
        "https://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[fe80::1]/hook",
        "ftp://example.com/",
    ):
        refused = await register(http, url)
        assert refused.status_code == 422, (url, refused.text)
        [problem] = refused.json()["detail"]
        assert problem["loc"] == ["body", "url"]
    still = await http.get("/v1/offices/4701/webhook", headers=OFFICE_4701)
    assert still.json()["url"] == receiver.url  # a refused URL changed nothing

    line = await http.put(
        "/v1/offices/4701/line", json={"group_id": "not-a-group"}, headers=OFFICE_4701
    )
    assert line.status_code == 422
    assert line.json()["detail"][0]["loc"] == ["body", "group_id"]

    async def audited() -> list[dict[str, Any]] | None:
        page = await http.get("/v1/admin/audit", params={"action": "webhook_register"})
        items: list[dict[str, Any]] = page.json()["items"]
        return items if len(items) >= 3 else None

    entries = await eventually(audited, what="three webhook registrations in the audit log")
    assert sorted((e["actor"]["kind"], e["target"]["id"], e["after"]) for e in entries) == [
        ("office", "4701", receiver.url),
        ("operator", "1001", receiver.url),
        ("operator", "4702", receiver.url),
    ]
    assert "whsec_" not in str(entries)  # the secret is never logged
    region_view = await http.get(
        "/v1/admin/audit", params={"action": "webhook_register"}, headers=REGION_12
    )
    assert {e["target"]["id"] for e in region_view.json()["items"]} == {"4701", "4702"}


async def test_signed_events_reach_the_receiver_and_a_rotated_secret_keeps_verifying(
    start_services: StartServices, http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    await start_services("intake", "allocator", "notifier", extra_env=LOOPBACK)
    first = (await register(http, receiver.url + "/vcs")).json()["secret"]

    submitted = await http.post("/v1/requests", json=request_body("4701"), headers=OFFICE_4701)
    request_id = submitted.json()["request_id"]
    delivered = await wait_status(http, request_id, "delivered")
    received = await receiver.wait_for(2)
    events = {p["type"]: p for p in payloads(received, first)}
    assert set(events) == {SUBMITTED, ASSIGNED}
    assigned = events[ASSIGNED]
    assert assigned["subject"] == request_id
    assert assigned["data"]["credentials"]["passcode"] == delivered["assignment"]["passcode"]
    assert "sealed_credentials" not in assigned["data"]
    assert {r.headers["webhook-id"] for r in received} == {p["id"] for p in events.values()}

    rotated = await http.post("/v1/offices/4701/webhook/rotate", headers=OFFICE_4701)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["secret"]
    assert second != first
    assert rotated.json()["previous_secret_valid_until"] is not None

    cancelled = await http.post(f"/v1/requests/{request_id}/cancel", headers=OFFICE_4701)
    assert cancelled.status_code in (200, 202), cancelled.text
    after = (await receiver.wait_for(3))[2:]
    [request] = after
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (first, second):  # a receiver still on the old secret, or already on the new
        assert payloads(after, secret)[0]["type"] == RequestCancelled.cloudevent_type()


async def test_receiver_down_then_up_is_delivered_after_retries(
    start_services: StartServices,
    http: httpx.AsyncClient,
    receiver: WebhookReceiver,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    await start_services("intake", "allocator", "notifier", extra_env=LOOPBACK)
    secret = (await register(http, receiver.url)).json()["secret"]
    receiver.stop()
    submitted = await http.post("/v1/requests", json=request_body("4701"), headers=OFFICE_4701)
    request_id = submitted.json()["request_id"]
    messages = mongo[database_name(namespace, "notifier")]["webhook_messages"]

    async def retried() -> bool:
        found = await messages.find_one({"request_id": request_id, "event": "room.assigned"})
        return found is not None and found["attempts"] >= 2

    await eventually(retried, timeout=30, what="two failed tries of room.assigned")
    receiver.start()
    received = await receiver.wait_for(2)
    types = sorted(p["type"] for p in payloads(received, secret))
    assert types == sorted([SUBMITTED, ASSIGNED])

    # The receiver counts a request before it answers, and the notifier records the delivery
    # only once the answer is in: wait for that record instead of reading it at once.
    async def settled() -> Document | None:
        found = await messages.find_one({"request_id": request_id, "event": "room.assigned"})
        return found if found is not None and found["state"] != "pending" else None

    message = await eventually(settled, timeout=30, what="room.assigned's webhook settled")
    assert message["state"] == "delivered"
    assert message["attempts"] >= 3
    await wait_status(http, request_id, "delivered")


async def test_receiver_down_for_good_fails_the_delivery_for_operators(
    start_services: StartServices, http: httpx.AsyncClient, receiver: WebhookReceiver, tap: EventTap
) -> None:
    env = {**LOOPBACK, "VCS_WEBHOOK_RETRY_HOURS": "0.001"}  # a 3.6-second window (each time)
    await start_services("intake", "allocator", "notifier", extra_env=env)
    await register(http, receiver.url)
    receiver.status = 503
    submitted = await http.post("/v1/requests", json=request_body("4701"), headers=OFFICE_4701)
    request_id = submitted.json()["request_id"]

    [failure] = await tap.wait_for("credentials.failed")
    data = failure.cloudevent["data"]
    assert (data["request_id"], data["channel"]) == (request_id, "webhook")
    assert "webhook answered 503" in data["error"]
    failed = await wait_status(http, request_id, "delivery_failed")
    assert "webhook answered 503" in failed["delivery_error"]
    tries = receiver.count()
    assert tries >= 2  # retried before giving up
    assert len(tap.with_prefix("credentials.delivered")) == 1  # the mail itself went out

    receiver.status = 200  # the office fixed its receiver; an operator redelivers
    again = await http.post(f"/v1/admin/requests/{request_id}/redeliver", headers=REGION_12)
    assert again.status_code == 200, again.text
    received = await receiver.wait_for(tries + 2)  # its two failed messages, tried again
    assert sorted(r.json()["type"] for r in received[tries:]) == sorted([SUBMITTED, ASSIGNED])
    await wait_status(http, request_id, "delivered")


async def test_a_line_push_reaches_the_office_group(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    line = FakeLine(LINE_TOKEN).start()
    try:
        env = {"VCS_LINE_CHANNEL_TOKEN": LINE_TOKEN, "VCS_LINE_API_URL": line.url}
        await start_services("intake", "allocator", "notifier", extra_env=env)
        put = await http.put("/v1/offices/4701/line", json={"group_id": GROUP}, headers=OFFICE_4701)
        assert put.status_code == 200, put.text

        submitted = await http.post("/v1/requests", json=request_body("4701"), headers=OFFICE_4701)
        delivered = await wait_status(http, submitted.json()["request_id"], "delivered")
        await line.wait_for(1)
        [push] = line.accepted
        assert push["to"] == GROUP
        [text] = [m["text"] for m in push["messages"]]
        assert delivered["assignment"]["meeting_id"] in text
        assert delivered["assignment"]["passcode"] in text

        other = await http.post("/v1/requests", json=request_body("4702"), headers=NATIONAL)
        await wait_status(http, other.json()["request_id"], "delivered")
        assert len(line.accepted) == 1  # 4702 registered no LINE group
    finally:
        line.stop()
