"""No passcode on any topic an integration can bind, none in any log (issue 6)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from vcs_tools.devstack import ServiceProcess

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
