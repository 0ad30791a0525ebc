"""Every accepted request reaches a final state (issue 11.2, the notifier's part): a failure
retrying cannot fix (a bad address, a relay refusing with a 5xx) ends in ``credentials.failed``
with the reason and the request ``delivery_failed`` at once, a temporary one (a 4xx) after
``VCS_SEND_ATTEMPTS`` tries; nothing is dead-lettered. Text that would break a mail header
(a title with line breaks and control characters, 300 characters of it, a contact name with
quotes, a comma and a zero-width space) is written through the header API and the mail goes
out, one line per header, nothing injected.

The relay is the real local SMTP sink, refusing like a relay would.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.integration.test_allocator_concurrency import publish
from tests.support.events import request_submitted
from tests.support.requests import request_body, tomorrow_at, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from vcs_shared.events import Contact
from vcs_shared.topology import Topology
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.e2e


async def dead_letters(broker: Any, topology: Topology) -> int:
    queue = await broker.declare_queue(f"{topology.namespace}.notifier.dlq", passive=True)
    count: int = queue.declaration_result.message_count
    return count


async def test_a_relay_refusing_for_good_fails_the_delivery_at_once_with_the_reason(
    start_services: StartServices,
    http: httpx.AsyncClient,
    smtp_sink: SmtpSink,
    tap: EventTap,
    broker: Any,
    topology: Topology,
) -> None:
    await start_services("intake", "allocator", "notifier")
    smtp_sink.refuse("554 5.7.1 <somchai@example.go.th>: relay access denied")

    request_id = (await http.post("/v1/requests", json=request_body())).json()["request_id"]
    failed = await wait_status(http, request_id, "delivery_failed")

    [event] = await tap.wait_for("credentials.failed")
    assert event.cloudevent["data"]["error"] == failed["delivery_error"]
    assert "554 5.7.1" in failed["delivery_error"]
    assert "relay access denied" in failed["delivery_error"]
    assert "\n" not in failed["delivery_error"]
    assert smtp_sink.refused == 1  # not tried again: retrying cannot help
    assert tap.with_prefix("credentials.delivered") == []
    assert await dead_letters(broker, topology) == 0


async def test_a_relay_refusing_for_now_is_tried_again_then_fails_with_the_reason(
    start_services: StartServices,
    http: httpx.AsyncClient,
    smtp_sink: SmtpSink,
    tap: EventTap,
    broker: Any,
    topology: Topology,
) -> None:
    await start_services("intake", "allocator", "notifier", extra_env={"VCS_SEND_ATTEMPTS": "3"})
    smtp_sink.refuse("451 4.3.0 mailbox busy, try later")

    request_id = (await http.post("/v1/requests", json=request_body())).json()["request_id"]
    failed = await wait_status(http, request_id, "delivery_failed")

    assert "failed after 3 attempts" in failed["delivery_error"]
    assert "451 4.3.0" in failed["delivery_error"]
    assert smtp_sink.refused == 3
    assert len(await tap.wait_for("credentials.failed")) == 1
    assert await dead_letters(broker, topology) == 0


async def test_an_address_no_mail_can_carry_fails_the_delivery_without_reaching_the_relay(
    start_services: StartServices,
    http: httpx.AsyncClient,
    smtp_sink: SmtpSink,
    tap: EventTap,
) -> None:
    """A Thai local part is a valid address to the intake but not one a mail header can carry
    without SMTPUTF8: the mail cannot be written, so it fails at once, with the reason."""
    await start_services("intake", "allocator", "notifier")
    contact = {"name": "สมชาย ใจดี", "email": "สมชาย@example.go.th", "phone": "042-711360"}

    submitted = await http.post("/v1/requests", json=request_body(contact=contact))
    assert submitted.status_code == 202, submitted.text
    failed = await wait_status(http, submitted.json()["request_id"], "delivery_failed")

    assert "could not be written" in failed["delivery_error"]
    assert "non-ASCII" in failed["delivery_error"]
    assert smtp_sink.refused == 0
    assert smtp_sink.messages == []
    assert len(await tap.wait_for("credentials.failed")) == 1


async def test_text_that_would_break_a_header_is_written_through_the_header_api(
    start_services: StartServices,
    amqp_url: str,
    topology: Topology,
    smtp_sink: SmtpSink,
    tap: EventTap,
) -> None:
    """Published straight onto the exchange (an older intake, a forged event): the title holds
        line breaks, a vertical tab, NEL, a line separator and a would-be Bcc header, 300
        characters in all (the event model does not refuse it); the contact's name quotes, a comma
    and a format character."""
    await start_services("allocator", "notifier")
    title = "ประชุม\r\nBcc: everyone@example.com\x0b\x85\u2028" + "ติดตามสถานการณ์ " * 20
    title = title[:300]
    contact = Contact(
        name='สมชาย "ใจดี",\u200bผอ.', email="somchai@example.go.th", phone="042-711360"
    )
    request_id = str(uuid.uuid4())
    event = request_submitted(
        request_id, tomorrow_at(9) + timedelta(days=2), title=title, contact=contact
    )

    await publish(amqp_url, topology, [event])
    await tap.wait_for("credentials.delivered")

    [mail] = smtp_sink.messages
    subject = str(mail["Subject"])
    assert len(mail.get_all("Subject") or []) == 1
    assert mail.get_all("Bcc") is None
    assert "\n" not in subject
    assert "\r" not in subject
    assert subject.startswith("DOPA VCS: ")
    assert subject.endswith("…")
    assert len(subject) < 120
    assert str(mail["To"]) == '"สมชาย \\"ใจดี\\", ผอ." <somchai@example.go.th>'
    assert mail["Date"].datetime is not None
    assert mail["X-VCS-Request-Id"] == request_id
    assert mail.defects == []
