"""Each service serves Prometheus metrics on an address of its own, never the public one, and
they count what happened to a request (issue 16, Metrics)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_tools.devstack import free_port

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"http://127.0.0.1:{port}/metrics")
    answer.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_count_one_request_through_every_service(
    start_services: StartServices, http: httpx.AsyncClient, namespace: str
) -> None:
    ports = {name: free_port() for name in ("intake", "allocator", "notifier", "desk")}
    for name, port in ports.items():
        await start_services(name, extra_env={"VCS_METRICS_PORT": str(port)})

    accepted = await http.post(
        "/v1/requests", json=request_body(), headers={"Idempotency-Key": "m1"}
    )
    assert accepted.status_code == 202
    await wait_status(http, accepted.json()["request_id"], "delivered")

    async def counted() -> dict[str, Samples] | None:
        seen = {name: await scrape(port) for name, port in ports.items()}
        done = value(
            seen["intake"], "vcs_messages_total", queue=f"{namespace}.intake", outcome="handled"
        )
        return seen if done == 2 else None  # room.assigned and credentials.delivered

    seen = await eventually(counted, what="the intake's projection to count its messages")
    intake, allocator, notifier = seen["intake"], seen["allocator"], seen["notifier"]
    posts = value(
        intake, "http_requests_total", handler="/v1/requests", method="POST", status="2xx"
    )
    assert posts == 1
    assert value(allocator, "vcs_decisions_total", outcome="assigned") == 1
    assert value(allocator, "vcs_allocation_seconds_count") == 1
    assert (
        value(allocator, "vcs_messages_total", queue=f"{namespace}.allocator", outcome="handled")
        == 1
    )
    assert value(notifier, "vcs_deliveries_total", channel="email", result="delivered") == 1
    for name in ("intake", "allocator", "notifier"):
        assert value(seen[name], "vcs_broker_connected") == 1, name
        assert value(seen[name], "vcs_store_reachable") == 1, name
    assert value(intake, "vcs_outbox_backlog", collection="requests") == 0
    assert value(intake, "vcs_outbox_oldest_unsent_age_seconds", collection="requests") == 0
    public = await http.get("/metrics")
    assert public.status_code == 404  # never on the public address
