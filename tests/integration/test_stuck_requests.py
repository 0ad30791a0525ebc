"""The safety net (issue 11, point 2): a request still not final after
``VCS_STUCK_AFTER_MINUTES`` is logged as an error by the intake and listed by
``vcs requests stuck``, with the dead letters carrying its id.

The notifier does not run, so an assigned request never reaches a final state; a letter
about it that the allocator cannot read is dead-lettered. Everything is real: the intake,
the allocator and the desk as processes, the broker, the store, the ``vcs`` command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.auth import national_operator_token
from tests.support.cli import vcs
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_shared.topology import Topology
from vcs_tools.devstack import free_port

pytestmark = pytest.mark.integration

STUCK_AFTER_MINUTES = "0.05"  # three seconds


async def test_a_request_not_final_in_time_is_logged_and_listed_with_its_dead_letter(
    start_services: StartServices,
    http: httpx.AsyncClient,
    broker: Any,
    topology: Topology,
    intake_url: str,
    tmp_path: Path,
) -> None:
    metrics_port = free_port()
    (intake,) = await start_services(
        "intake",
        extra_env={
            "VCS_STUCK_AFTER_MINUTES": STUCK_AFTER_MINUTES,
            "VCS_METRICS_PORT": str(metrics_port),
        },
    )
    await start_services("allocator", "desk")
    stuck_id = (await http.post("/v1/requests", json=request_body("4701"))).json()["request_id"]
    await wait_status(http, stuck_id, "assigned")  # and no notifier to deliver it
    unreadable = {
        "specversion": "1.0",
        "id": "letter-about-the-stuck-request",
        "source": "/test",
        "type": "th.go.dopa.vcs.request.submitted.v2",
        "subject": stuck_id,
        "data": {"request_id": stuck_id, "participants": "many"},
    }
    exchange = await broker.get_exchange(topology.exchange)
    await exchange.publish(
        aio_pika.Message(
            body=json.dumps(unreadable).encode(),
            message_id=unreadable["id"],
            content_type="application/cloudevents+json",
        ),
        routing_key="request.submitted.47.4701",
    )

    async def logged() -> list[dict[str, Any]] | None:
        lines = [json.loads(line) for line in intake.log_path.read_text().splitlines() if line]
        found = [e for e in lines if e.get("event") == "request.stuck"]
        return found or None

    [entry] = await eventually(logged, timeout=30, what="request.stuck in the intake's log")
    assert entry["level"] == "error"
    assert entry["request_id"] == stuck_id
    assert entry["status"] == "assigned"

    async def gauge() -> float | None:
        async with httpx.AsyncClient(timeout=10) as client:
            scraped = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        values = [
            sample.value
            for family in text_string_to_metric_families(scraped)
            for sample in family.samples
            if sample.name == "vcs_requests_stuck"
        ]
        return values[0] if values and values[0] else None

    assert await eventually(gauge, what="the stuck gauge") == 1  # the VcsStuckRequests alert

    env = {"VCS_API_URL": intake_url, "VCS_TOKEN": national_operator_token()}

    async def listed_with_letter() -> dict[str, Any] | None:
        result = await vcs(
            "requests", "stuck", "--minutes", STUCK_AFTER_MINUTES, "--json", cwd=tmp_path, **env
        )
        assert result.returncode == 0, result.stdout + result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        [row] = [r for r in rows if r["request_id"] == stuck_id]
        return row if len(row["dead_letters"]) >= 2 else None

    # Both services that consume request.submitted set the unreadable letter aside.
    row = await eventually(listed_with_letter, timeout=30, what="the stuck request's letters")
    assert row["status"] == "assigned"
    letters = sorted((letter["service"], letter["message_id"]) for letter in row["dead_letters"])
    assert letters == [
        ("allocator", "letter-about-the-stuck-request"),
        ("desk", "letter-about-the-stuck-request"),
    ]

    human = await vcs("requests", "stuck", cwd=tmp_path, **env)  # default: 10 minutes
    assert human.returncode == 0
    assert "no stuck requests" in human.stdout  # nothing waited 10 minutes yet
    again = await vcs("requests", "stuck", "--minutes", STUCK_AFTER_MINUTES, cwd=tmp_path, **env)
    assert stuck_id in again.stdout
    assert "dead letters: allocator letter-about-the-stuck-request" in again.stdout
