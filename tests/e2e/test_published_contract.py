"""The published event contract: served by the intake as generated, valid for the official
AsyncAPI parser, and obeyed by the real events of every type the services publish."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.support.auth import bearer, office_token
from tests.support.node import parse_asyncapi
from tests.support.paths import ROOT
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap, TappedMessage
from vcs_shared.contract import (
    ASYNCAPI_DOCUMENT,
    ASYNCAPI_MEDIA_TYPE,
    SCHEMA_MEDIA_TYPE,
    schema_path,
)
from vcs_shared.events import EVENT_TYPES
from vcs_shared.thaitime import BANGKOK
from vcs_tools.devstack import free_port

pytestmark = pytest.mark.e2e

DOCS = ROOT / "docs"


async def test_the_intake_serves_the_generated_files_to_anyone(
    start_services: StartServices, intake_url: str
) -> None:
    await start_services("intake")
    async with httpx.AsyncClient(base_url=intake_url) as anonymous:
        document = await anonymous.get(f"/{ASYNCAPI_DOCUMENT}")
        assert document.status_code == 200
        assert document.headers["content-type"] == ASYNCAPI_MEDIA_TYPE
        assert document.content == (DOCS / ASYNCAPI_DOCUMENT).read_bytes()

        for event in EVENT_TYPES.values():
            schema = await anonymous.get(f"/{schema_path(event)}")
            assert schema.status_code == 200, schema_path(event)
            assert schema.headers["content-type"] == SCHEMA_MEDIA_TYPE
            assert schema.content == (DOCS / schema_path(event)).read_bytes()

        for unknown in ("room.assigned.v9.json", "room.assigned.v1", "..%2Fasyncapi.yaml"):
            assert (await anonymous.get(f"/schemas/{unknown}")).status_code == 404, unknown
        missing = await anonymous.get("/schemas/room.assigned.v9.json")
        assert "/asyncapi.yaml lists them all" in missing.json()["detail"]


async def test_the_served_document_is_valid_for_the_official_parser(
    start_services: StartServices, intake_url: str
) -> None:
    """The parser fetches the document from the intake and its schema references over HTTP
    relative to it, as an integration's tooling would."""
    await start_services("intake")

    verdict = await parse_asyncapi(f"{intake_url}/{ASYNCAPI_DOCUMENT}")

    assert verdict.valid, verdict.of_severity("error")
    assert verdict.of_severity("error", "warning") == []


async def test_real_events_of_every_type_match_the_published_contract(
    start_services: StartServices, http: httpx.AsyncClient, tap: EventTap, intake_url: str
) -> None:
    """Drives every outcome through the running services, captures what they publish and
    checks each message against the contract the intake serves. The event types come from the
    registry, so a new type that this test does not yet provoke fails it by name."""
    reminding = {"VCS_REMINDERS": "110s", "VCS_REMINDER_POLL_SECONDS": "0.2"}
    processes = await start_services(extra_env=reminding)

    starts_at = (datetime.now(BANGKOK) + timedelta(minutes=2)).replace(microsecond=0)
    delivered = await submit(http, request_body("4701", starts_at=starts_at))
    await wait_status(http, delivered, "delivered")
    await tap.wait_for("reminder.sent", timeout=90)  # 110 s before the meeting
    rejected = await submit(http, request_body("4702", participants=5000))
    await wait_status(http, rejected, "rejected")
    await reassign_to_a_free_room(http, delivered)
    await tap.wait_for("room.reassigned")
    assert (await http.post(f"/v1/requests/{delivered}/cancel")).status_code == 200
    await tap.wait_for("room.released")

    notifier = next(p for p in processes if p.name == "notifier")
    notifier.stop()
    await start_services(
        "notifier", extra_env={"VCS_SMTP_PORT": str(free_port()), "VCS_SEND_ATTEMPTS": "1"}
    )
    undeliverable = await submit(http, request_body("4703"))
    await wait_status(http, undeliverable, "delivery_failed")
    await tap.wait_for("credentials.failed")

    ticket = await support_ticket_worked_through(http)
    await tap.wait_for("support.done")

    contract = await ServedContract.fetch(intake_url)
    captured = {m.cloudevent["type"] for m in tap.messages}
    missing = sorted(set(EVENT_TYPES) - captured)
    assert not missing, f"no real event of {missing} captured: make this test provoke it"
    for message in tap.messages:
        contract.check(message)
    assert {m.cloudevent["subject"] for m in tap.messages} == {
        delivered,
        rejected,
        undeliverable,
        ticket,
    }


async def reassign_to_a_free_room(http: httpx.AsyncClient, request_id: str) -> None:
    """An operator moves the booking to another room free for its window (room.reassigned)."""
    request = (await http.get(f"/v1/requests/{request_id}")).json()
    free = await http.get(
        "/v1/availability",
        params={k: request[k] for k in ("district_code", "starts_at", "ends_at", "participants")},
    )
    target = free.json()["rooms"][0]["meeting_id"]
    moved = await http.post(
        f"/v1/admin/requests/{request_id}/reassign", json={"meeting_id": target}
    )
    assert moved.status_code == 200, moved.text


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/v1/requests", json=body)
    assert response.status_code == 202, response.text
    request_id: str = response.json()["request_id"]
    return request_id


async def support_ticket_worked_through(http: httpx.AsyncClient) -> str:
    """An office asks for staff, an operator claims the ticket and marks it done."""
    asked = await http.post(
        "/v1/support-requests",
        json={
            "topic": "ตั้งค่าไมโครโฟน",
            "contact": {
                "name": "สมชาย ใจดี",
                "email": "somchai@example.go.th",
                "phone": "042-711360",
            },
        },
        headers=bearer(office_token("4701")),
    )
    assert asked.status_code == 201, asked.text
    ticket_id: str = asked.json()["ticket_id"]
    claim = {"helper": "นายช่าง", "visit_at": "2026-12-03T08:30:00+07:00"}
    claimed = await http.post(f"/v1/admin/support/{ticket_id}/claim", json=claim)
    assert claimed.status_code == 200, claimed.text
    done = await http.post(f"/v1/admin/support/{ticket_id}/done", json={"note": "เรียบร้อย"})
    assert done.status_code == 200, done.text
    return ticket_id


class ServedContract:
    """The AsyncAPI document and schemas as the intake serves them, ready to check messages."""

    def __init__(self, document: dict[str, Any], base_url: str, registry: Registry[Any]) -> None:
        self.document = document
        self.base_url = base_url
        self.registry = registry

    @classmethod
    async def fetch(cls, intake_url: str) -> ServedContract:
        async with httpx.AsyncClient() as anonymous:
            base_url = f"{intake_url}/{ASYNCAPI_DOCUMENT}"
            document = yaml.safe_load((await anonymous.get(base_url)).text)
            resources = []
            for message in document["components"]["messages"].values():
                url = urljoin(base_url, message["payload"]["properties"]["data"]["$ref"])
                schema = (await anonymous.get(url)).raise_for_status().json()
                resources.append((url, Resource.from_contents(schema)))
        return cls(document, base_url, Registry().with_resources(resources))

    def check(self, message: TappedMessage) -> None:
        """The body against its message's payload schema (the CloudEvent, its data against the
        served schema file), and the AMQP properties and routing key the document promises."""
        event = message.cloudevent
        messages = self.document["components"]["messages"]
        [key] = [k for k, m in messages.items() if m["name"] == event["type"]] or [None]
        assert key is not None, f"{event['type']} is not in the published document"
        published = messages[key]
        validator = Draft202012Validator(
            {"$id": self.base_url, **published["payload"]},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        assert not errors, f"{event['type']} off its schema: {errors}"

        operation, channel = self._sent_on(f"#/components/messages/{key}")
        assert message.content_type == published["contentType"]
        assert message.message_id == event["id"]
        assert message.delivery_mode == operation["bindings"]["amqp"]["deliveryMode"]
        assert message.routing_key == channel["address"].format(**event["data"])

    def _sent_on(self, message_ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The send operation, and its channel, that carries the referenced message."""
        for operation in self.document["operations"].values():
            channel_key = operation["channel"]["$ref"].removeprefix("#/channels/")
            channel = self.document["channels"][channel_key]
            if any(m["$ref"] == message_ref for m in channel["messages"].values()):
                assert operation["action"] == "send"
                return operation, channel
        raise AssertionError(f"no operation sends {message_ref}")
