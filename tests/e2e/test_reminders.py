"""Reminders before a meeting (issue 15): sent by the office's channels (mail, and LINE to an
office that registered a group) at each lead time of ``VCS_REMINDERS``, once, with two
notifier processes running side by side (the schedule is durable in the store and each
reminder is claimed by one of them), and never for a request that was cancelled. Each sent
reminder is announced once as ``reminder.sent`` (what an office's webhook receives)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.http_fakes import FakeLine
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_shared.store import Document, database_name
from vcs_shared.thaitime import BANGKOK
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.e2e

REMINDERS = {"VCS_REMINDERS": "1d,110s,100s", "VCS_REMINDER_POLL_SECONDS": "0.2"}
LINE_TOKEN = "fake-line-channel-access-token"
GROUPS = {"4701": "C" + "4701abcdef" * 3 + "01", "4702": "C" + "4702abcdef" * 3 + "02"}


def message_id(mail: EmailMessage) -> str:
    """The Message-ID without the folding a long one gets (``Message-ID:\r\n <...>``)."""
    return str(mail["Message-ID"]).strip()


def reminders_of(sink: SmtpSink, request_id: str) -> list[EmailMessage]:
    return [
        m
        for m in sink.messages
        if message_id(m).startswith("<reminder-") and m["X-VCS-Request-Id"] == request_id
    ]


async def test_a_reminder_is_sent_once_with_two_notifiers_running_and_none_when_cancelled(
    start_services: StartServices,
    http: httpx.AsyncClient,
    smtp_sink: SmtpSink,
    mongo: AsyncMongoClient[Document],
    namespace: str,
    tap: EventTap,
) -> None:
    line = FakeLine(LINE_TOKEN).start()
    try:
        await reminders_go_once_by_mail_and_line(
            start_services, http, smtp_sink, mongo, namespace, line, tap
        )
    finally:
        line.stop()


async def reminders_go_once_by_mail_and_line(
    start_services: StartServices,
    http: httpx.AsyncClient,
    smtp_sink: SmtpSink,
    mongo: AsyncMongoClient[Document],
    namespace: str,
    line: FakeLine,
    tap: EventTap,
) -> None:
    env = {**REMINDERS, "VCS_LINE_CHANNEL_TOKEN": LINE_TOKEN, "VCS_LINE_API_URL": line.url}
    services = await start_services("intake", "allocator", "notifier", "notifier", extra_env=env)
    for district, group in GROUPS.items():
        put = await http.put(f"/v1/offices/{district}/line", json={"group_id": group})
        assert put.status_code == 200, put.text
    starts_at = (datetime.now(BANGKOK) + timedelta(minutes=2)).replace(microsecond=0)
    kept = (await http.post("/v1/requests", json=request_body("4701", starts_at=starts_at))).json()
    dropped = (
        await http.post("/v1/requests", json=request_body("4702", starts_at=starts_at))
    ).json()
    await wait_status(http, kept["request_id"], "delivered")
    await wait_status(http, dropped["request_id"], "delivered")
    await http.post(f"/v1/requests/{dropped['request_id']}/cancel")
    await wait_status(http, dropped["request_id"], "cancelled")

    async def both_sent() -> list[EmailMessage] | None:
        found = reminders_of(smtp_sink, kept["request_id"])
        return found if len(found) >= 2 else None

    sent = await eventually(both_sent, timeout=90, what="the 110s and 100s reminders")

    assert sorted(message_id(m).split(".")[0] for m in sent) == [
        "<reminder-1m40s",
        "<reminder-1m50s",
    ]
    reminders = mongo[database_name(namespace, "notifier")]["reminders"]

    async def settled() -> dict[str, str] | None:
        """Each reminder's state once none is pending any more: one being sent stays pending
        (its claim is a lease, not a state) until its last channel is done, and LINE goes
        after the mail."""
        found = {d["_id"]: d["state"] async for d in reminders.find({})}
        return found if "pending" not in found.values() else None

    states = await eventually(settled, timeout=30, what="the reminders settled")
    assert states == {
        f"{kept['request_id']}:1m50s": "sent",
        f"{kept['request_id']}:1m40s": "sent",
        f"{dropped['request_id']}:1m50s": "withdrawn",
        f"{dropped['request_id']}:1m40s": "withdrawn",
    }  # the 1d reminder was already past: never scheduled
    assert reminders_of(smtp_sink, dropped["request_id"]) == []
    text = sent[0].get_body(("plain",))
    assert text is not None
    assert "เตือน: การประชุมนี้จะเริ่มในอีก" in text.get_content()
    assert "Reminder: this meeting starts in" in text.get_content()

    async def senders_logged() -> list[int] | None:
        """The notifier logs ``reminder.done`` just after the store says "sent": wait for it."""
        senders = []
        for notifier in (p for p in services if p.name == "notifier"):
            for logged in notifier.log_path.read_text().splitlines():
                entry = json.loads(logged) if logged.startswith("{") else {}
                if entry.get("event") == "reminder.done" and entry.get("state") == "sent":
                    senders.append(notifier.pid)
        return senders if len(senders) >= 2 else None

    senders = await eventually(senders_logged, timeout=30, what="both reminder.done lines")
    assert len(senders) == 2  # each reminder sent by one process, once
    assert len(reminders_of(smtp_sink, kept["request_id"])) == 2
    # Each announced once (what an office's webhook receives), none for the cancelled request.
    announced = await tap.wait_for("reminder.sent", 2)
    assert sorted((m.cloudevent["subject"], m.cloudevent["data"]["lead"]) for m in announced) == [
        (kept["request_id"], "1m40s"),
        (kept["request_id"], "1m50s"),
    ]

    # LINE: each group got its credentials; 4701 both reminders once each (retry keys cannot
    # hide a second send: every push that reached the fake counts), 4702 its cancellation only.
    await line.wait_for(5)
    pushes = [(r.json()["to"], r.json()["messages"][0]["text"]) for r in line.received]
    reminded = [(to, pushed) for to, pushed in pushes if pushed.startswith("เตือน")]
    assert [to for to, _ in reminded] == [GROUPS["4701"]] * 2
    assert sorted(pushed.split("\n", 1)[0] for _, pushed in reminded) == [
        "เตือน: การประชุมจะเริ่มในอีก 1 นาที 40 วินาที",
        "เตือน: การประชุมจะเริ่มในอีก 1 นาที 50 วินาที",
    ]
    assert sorted(to for to, _ in pushes) == sorted(
        [GROUPS["4701"]] * 3 + [GROUPS["4702"]] * 2
    )  # 4701: credentials and two reminders; 4702: credentials and the cancellation
