"""Webhook and LINE delivery end to end (issue 15): the services running, an office's
receiver and a fake LINE as real local HTTP servers, everything through the intake's front
door (``/v1/offices/{district}/webhook`` and ``/line`` are forwarded to the notifier).

The receiver gets every event of the office's requests, each once (counted once every
webhook message of the request is settled, so no retry can still add one), its reminders as
``reminder.sent``, and a receiver down for good ends in one ``credentials.failed``, not a
chain of them (the loop rule of :mod:`vcs_notifier.webhook_domain`).

The tests allow loopback with ``VCS_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8``, as an operator
would allow an office's intranet; every other internal address is still refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
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
from vcs_shared.events import (
    CredentialsDelivered,
    CredentialsFailed,
    ReminderSent,
    RequestCancelled,
    RequestSubmitted,
    RoomAssigned,
    RoomReleased,
    SupportDone,
    SupportRequested,
)
from vcs_shared.store import Document, database_name
from vcs_shared.thaitime import BANGKOK

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
DELIVERED = CredentialsDelivered.cloudevent_type()
FAILED = CredentialsFailed.cloudevent_type()
CANCELLED = RequestCancelled.cloudevent_type()
RELEASED = RoomReleased.cloudevent_type()
SUPPORT_REQUESTED = SupportRequested.cloudevent_type()
SUPPORT_DONE = SupportDone.cloudevent_type()
REMINDED = ReminderSent.cloudevent_type()
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


async def settled_messages(
    mongo: AsyncMongoClient[Document], namespace: str, request_id: str, count: int
) -> list[Document]:
    """The request's webhook messages once there are ``count`` and none is still to be tried
    (delivered or failed for good): from then on nothing more reaches the receiver."""
    messages = mongo[database_name(namespace, "notifier")]["webhook_messages"]

    async def settled() -> list[Document] | None:
        found = [d async for d in messages.find({"request_id": request_id})]
        done = len(found) >= count and all(d["state"] != "pending" for d in found)
        return found if done else None

    found = await eventually(settled, timeout=60, what=f"{count} webhook messages settled")
    assert len(found) == count, sorted(d["event"] for d in found)
    return found


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
    received = await receiver.wait_for(3)
    events = {p["type"]: p for p in payloads(received, first)}
    assert set(events) == {SUBMITTED, ASSIGNED, DELIVERED}
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
    after = (await receiver.wait_for(5))[3:]
    for request in after:
        assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (first, second):  # a receiver still on the old secret, or already on the new
        assert sorted(p["type"] for p in payloads(after, secret)) == sorted([CANCELLED, RELEASED])


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
    received = await receiver.wait_for(3)
    types = sorted(p["type"] for p in payloads(received, secret))
    assert types == sorted([SUBMITTED, ASSIGNED, DELIVERED])

    # The receiver counts a request before it answers, and the notifier records the delivery
    # only once the answer is in: wait for that record instead of reading it at once.
    async def settled() -> Document | None:
        found = await messages.find_one({"request_id": request_id, "event": "room.assigned"})
        return found if found is not None and found["state"] != "pending" else None

    message = await eventually(settled, timeout=30, what="room.assigned's webhook settled")
    assert message["state"] == "delivered"
    assert message["attempts"] >= 3
    await wait_status(http, request_id, "delivered")


async def test_receiver_down_for_good_fails_the_delivery_once_without_a_loop(
    start_services: StartServices,
    http: httpx.AsyncClient,
    receiver: WebhookReceiver,
    tap: EventTap,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    env = {**LOOPBACK, "VCS_WEBHOOK_RETRY_HOURS": "0.001"}  # a 3.6-second window (each time)
    await start_services("intake", "allocator", "notifier", extra_env=env)
    secret = (await register(http, receiver.url)).json()["secret"]
    receiver.status = 503
    submitted = await http.post("/v1/requests", json=request_body("4701"), headers=OFFICE_4701)
    request_id = submitted.json()["request_id"]

    [failure] = await tap.wait_for("credentials.failed")
    data = failure.cloudevent["data"]
    assert (data["request_id"], data["channel"]) == (request_id, "webhook")
    assert "webhook answered 503" in data["error"]
    failed = await wait_status(http, request_id, "delivery_failed")
    assert "webhook answered 503" in failed["delivery_error"]

    # Every event goes to the dead webhook, credentials.failed itself too: each message fails
    # for good in its window, and only the credentials' one announced anything (no loop).
    messages = await settled_messages(mongo, namespace, request_id, 4)
    assert sorted((m["event"], m["state"]) for m in messages) == [
        ("credentials.delivered", "failed"),  # the mail itself went out
        ("credentials.failed", "failed"),
        ("request.submitted", "failed"),
        ("room.assigned", "failed"),
    ]
    assert all("webhook answered 503" in m["error"] for m in messages)  # for operators
    announced = {m["event"]: [e["routing_key"] for e in m.get("outbox", [])] for m in messages}
    assert announced == {
        "credentials.delivered": [],
        "credentials.failed": [],
        "request.submitted": [],
        "room.assigned": ["credentials.failed.47.4701"],
    }
    assert len(tap.with_prefix("credentials.failed")) == 1
    assert len(tap.with_prefix("credentials.delivered")) == 1
    tries = receiver.count()
    assert tries >= 8  # each of the four retried before giving up
    assert receiver.delivered() == []

    receiver.status = 200  # the office fixed its receiver; an operator redelivers
    again = await http.post(f"/v1/admin/requests/{request_id}/redeliver", headers=REGION_12)
    assert again.status_code == 200, again.text
    await wait_status(http, request_id, "delivered")
    # The four failed messages tried again, and the redelivery's own credentials.delivered.
    messages = await settled_messages(mongo, namespace, request_id, 5)
    assert {m["state"] for m in messages} == {"delivered"}
    received = payloads(receiver.delivered(), secret)
    assert sorted(p["type"] for p in received) == sorted(
        [SUBMITTED, ASSIGNED, DELIVERED, FAILED, DELIVERED]
    )
    assert len({p["id"] for p in received}) == 5  # each event once
    assert len(tap.with_prefix("credentials.failed")) == 1


async def test_every_event_of_a_request_reaches_its_webhook_once(
    start_services: StartServices,
    http: httpx.AsyncClient,
    receiver: WebhookReceiver,
    tap: EventTap,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    await start_services("intake", "allocator", "notifier", "desk", extra_env=LOOPBACK)
    secret = (await register(http, receiver.url)).json()["secret"]
    body = request_body("4701", needs_support=True)
    submitted = await http.post("/v1/requests", json=body, headers=OFFICE_4701)
    request_id = submitted.json()["request_id"]
    await wait_status(http, request_id, "delivered")
    await tap.wait_for("support.requested")
    cancelled = await http.post(f"/v1/requests/{request_id}/cancel", headers=OFFICE_4701)
    assert cancelled.status_code in (200, 202), cancelled.text
    await tap.wait_for("room.released")
    await tap.wait_for("support.done")

    expected = [
        SUBMITTED,
        ASSIGNED,
        DELIVERED,
        SUPPORT_REQUESTED,
        CANCELLED,
        RELEASED,
        SUPPORT_DONE,
    ]
    messages = await settled_messages(mongo, namespace, request_id, len(expected))
    assert {m["state"] for m in messages} == {"delivered"}
    published = [m.cloudevent for m in tap.messages if m.cloudevent["subject"] == request_id]
    assert sorted(e["type"] for e in published) == sorted(expected)
    received = payloads(receiver.delivered(), secret)
    assert len(receiver.received) == len(expected)  # nothing sent twice, nothing refused
    assert sorted(p["id"] for p in received) == sorted(e["id"] for e in published)
    by_type = {p["type"]: p for p in received}
    assert by_type[DELIVERED]["data"]["channel"] == "email"
    assert by_type[SUPPORT_DONE]["data"]["resolution"] == "request_cancelled"
    assert by_type[RELEASED]["data"]["meeting_id"] == by_type[ASSIGNED]["data"]["meeting_id"]


async def test_a_reminder_reaches_the_webhook_once_with_two_notifiers(
    start_services: StartServices,
    http: httpx.AsyncClient,
    receiver: WebhookReceiver,
    tap: EventTap,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    env = {**LOOPBACK, "VCS_REMINDERS": "1d,110s", "VCS_REMINDER_POLL_SECONDS": "0.2"}
    await start_services("intake", "allocator", "notifier", extra_env=env)
    secret = (await register(http, receiver.url)).json()["secret"]
    # The second notifier starts knowing the webhook (a running one learns of it within 2 s).
    await start_services("notifier", extra_env=env)
    starts_at = (datetime.now(BANGKOK) + timedelta(minutes=2)).replace(microsecond=0)
    body = request_body("4701", starts_at=starts_at)
    request_id = (await http.post("/v1/requests", json=body, headers=OFFICE_4701)).json()[
        "request_id"
    ]
    delivered = await wait_status(http, request_id, "delivered")

    [reminded] = await tap.wait_for("reminder.sent", timeout=90)
    messages = await settled_messages(mongo, namespace, request_id, 4)
    assert sorted(m["event"] for m in messages) == sorted(
        ["request.submitted", "room.assigned", "credentials.delivered", "reminder.sent"]
    )
    received = payloads(receiver.delivered(), secret)
    assert len(receiver.received) == 4
    [reminder] = [p for p in received if p["type"] == REMINDED]
    assert reminder["id"] == reminded.cloudevent["id"]
    assert reminder["subject"] == request_id
    data = reminder["data"]
    assert data["lead"] == "1m50s"  # the 1d reminder was already past: none
    assert data["meeting_id"] == delivered["assignment"]["meeting_id"]
    assert datetime.fromisoformat(data["starts_at"]) == starts_at
    assert delivered["assignment"]["passcode"] not in str(reminder)  # no credentials here
    assert len(tap.with_prefix("reminder.sent")) == 1


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
