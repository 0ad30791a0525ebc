"""One request from HTTP to delivered credentials, through the three running services."""

from __future__ import annotations

import httpx
import pytest

from tests.support.events import cloudevent_type
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.e2e


async def test_a_request_is_delivered_with_its_meeting_id_and_three_events(
    start_services: StartServices, http: httpx.AsyncClient, tap: EventTap, smtp_sink: SmtpSink
) -> None:
    await start_services()

    response = await http.post("/v1/requests", json=request_body("4701", participants=250))
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "submitted"
    request_id = accepted["request_id"]

    final = await wait_status(http, request_id, "delivered")
    assignment = final["assignment"]
    assert assignment["capacity"] == 300
    assert len(assignment["meeting_id"]) in (9, 10, 11)
    assert assignment["passcode"]
    assert final["rejection"] is None

    for kind in ("request.submitted", "room.assigned", "credentials.delivered"):
        [message] = await tap.wait_for(kind)
        assert message.routing_key == f"{kind}.47.4701"
        assert message.content_type == "application/cloudevents+json"
        assert message.delivery_mode == 2
        event = message.cloudevent
        assert event["specversion"] == "1.0"
        assert event["type"] == cloudevent_type(kind)
        assert event["id"] == message.message_id
        assert event["subject"] == request_id
        assert event["data"]["request_id"] == request_id

    [mail] = smtp_sink.messages
    assert mail["To"].addresses[0].addr_spec == "somchai@example.go.th"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert assignment["meeting_id"] in text
    assert assignment["passcode"] in text


async def test_an_unknown_district_is_refused_naming_the_field(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")

    response = await http.post("/v1/requests", json=request_body("4799"))

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "district_code"]
    assert "DOPA district code" in error["msg"]
