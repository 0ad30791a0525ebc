"""Each service serves Prometheus metrics on an address of its own, never the public one, and
they count what happened to a request (issue 16, Metrics)."""

from __future__ import annotations

from typing import Any

import aio_pika
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.faults import fail_until
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_shared.topology import CONSUMERS, Topology
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
    start_services: StartServices,
    http: httpx.AsyncClient,
    namespace: str,
    service_env: dict[str, str],
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
    for name in ("intake", "allocator", "notifier", "desk"):
        assert value(seen[name], "vcs_broker_connected") == 1, name
        assert value(seen[name], "vcs_store_reachable") == 1, name
    assert value(intake, "vcs_outbox_backlog", collection="requests") == 0
    assert value(intake, "vcs_outbox_oldest_unsent_age_seconds", collection="requests") == 0
    public = await http.get("/metrics")
    assert public.status_code == 404  # never on the public address
    async with httpx.AsyncClient(timeout=10) as anonymous:  # nor on an internal API's
        for setting in ("VCS_ADMIN_PORT", "VCS_NOTIFIER_PORT", "VCS_DESK_PORT"):
            internal = await anonymous.get(f"http://127.0.0.1:{service_env[setting]}/metrics")
            assert internal.status_code in (401, 404), setting
            assert "vcs_" not in internal.text, setting


async def test_the_desk_counts_what_the_delivery_limit_dead_lettered(
    start_services: StartServices, broker: Any, topology: Topology
) -> None:
    """A message whose handling keeps failing is dead-lettered by the quorum queue's delivery
    limit inside the broker, where no consumer counts it: the desk's ``vcs_dead_letters``
    (the depth of each DLQ) is what shows it, and what the dead-letter alert watches."""
    port = free_port()
    await start_services("desk", extra_env={"VCS_METRICS_PORT": str(port)})
    allocator = await broker.get_queue(topology.consumed_queues("allocator")[0])  # a shard
    await broker.default_exchange.publish(
        aio_pika.Message(b"{}", message_id="keeps-failing"), routing_key=allocator.name
    )
    dead = topology.dead_letter_queue("allocator")  # every shard's, like the unsplit queue's

    async def dead_lettered() -> bool:
        declared = await (await broker.get_queue(dead)).declare()
        return bool(declared.message_count == 1)

    await fail_until(
        allocator, dead_lettered, timeout=60, what="the delivery limit dead-lettering it"
    )

    async def counted() -> Samples | None:
        seen = await scrape(port)
        return seen if value(seen, "vcs_dead_letters", queue=dead) == 1 else None

    seen = await eventually(counted, what="the desk to count the dead letter")
    for service in CONSUMERS:
        if service != "allocator":
            assert value(seen, "vcs_dead_letters", queue=topology.dead_letter_queue(service)) == 0
    assert value(seen, "vcs_broker_connected") == 1


async def test_the_intake_labels_every_request_with_its_route_each_time(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    """The route of a path is looked up once and kept (vcs_shared.metrics.RouteNamesKept):
    a second request to the same path, a path with an id and a wrong method are labelled as
    the first."""
    port = free_port()
    await start_services("intake", extra_env={"VCS_METRICS_PORT": str(port)})
    ids = []
    for key in ("route-1", "route-2"):
        answer = await http.post(
            "/v1/requests", json=request_body(), headers={"Idempotency-Key": key}
        )
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["request_id"])
    for request_id in ids:
        assert (await http.get(f"/v1/requests/{request_id}")).status_code == 200
    for _ in ids:
        assert (await http.delete("/v1/requests")).status_code == 405

    samples = await scrape(port)
    assert (
        value(samples, "http_requests_total", handler="/v1/requests", method="POST", status="2xx")
        == 2
    )
    assert (
        value(
            samples,
            "http_requests_total",
            handler="/v1/requests/{request_id}",
            method="GET",
            status="2xx",
        )
        == 2
    )
    assert (
        value(samples, "http_requests_total", handler="/v1/requests", method="DELETE", status="4xx")
        == 2
    )
    assert (
        value(samples, "http_request_duration_seconds_count", handler="/v1/requests", method="POST")
        == 2
    )
