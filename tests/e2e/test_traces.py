"""One trace per request: from the HTTP call through every event about it, across the
services, each event's span the parent of the span that handled it (issue 16, Traces); and
without ``VCS_OTLP_ENDPOINT`` a service sends its spans nowhere and never tries to."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.otlp import ReceivedSpan, running_collector
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_tools.devstack import ServiceProcess, launch_fresh

pytestmark = pytest.mark.e2e


def traceparent(tap: EventTap, prefix: str, request_id: str) -> tuple[str, str]:
    (message,) = [m for m in tap.with_prefix(prefix) if m.cloudevent["subject"] == request_id]
    _, trace_id, span_id, _ = message.cloudevent["traceparent"].split("-")
    return trace_id, span_id


async def test_the_events_of_one_request_form_one_chain_of_spans(
    start_services: StartServices, http: httpx.AsyncClient, tap: EventTap
) -> None:
    with running_collector() as (collector, endpoint):
        processes = await start_services(
            extra_env={"VCS_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        )
        answer = await http.post(
            "/v1/requests", json=request_body(), headers={"Idempotency-Key": "trace-1"}
        )
        request_id = answer.json()["request_id"]
        await wait_status(http, request_id, "delivered")
        await tap.wait_for("credentials.delivered")

        submitted = traceparent(tap, "request.submitted", request_id)
        assigned = traceparent(tap, "room.assigned", request_id)
        delivered = traceparent(tap, "credentials.delivered", request_id)
        assert submitted[0] == assigned[0] == delivered[0]  # one trace
        assert len({submitted[1], assigned[1], delivered[1]}) == 3

        def handled(event: str, service: str) -> ReceivedSpan | None:
            found = [
                s
                for s in collector.by_id().values()
                if s.name == f"handle {event}" and s.service == f"vcs-{service}"
            ]
            return found[0] if found else None

        async def exported() -> bool:
            return bool(
                handled("request.submitted", "allocator")
                and handled("room.assigned", "notifier")
                and submitted[1] in collector.by_id()
            )

        await eventually(exported, what="the services' spans at the collector")

    allocation = handled("request.submitted", "allocator")
    mailing = handled("room.assigned", "notifier")
    assert allocation is not None
    assert mailing is not None
    # request.submitted was published in the intake's span; the allocator's span is its child,
    # and room.assigned was published in it; the notifier's span is the child of that one...
    assert allocation.parent_span_id == submitted[1]
    assert assigned[1] == allocation.span_id
    assert mailing.parent_span_id == assigned[1]
    assert delivered[1] == mailing.span_id
    # ...and the chain goes up to the HTTP request's server span at the front door
    spans = collector.by_id()
    chain = [spans[submitted[1]]]
    while chain[-1].parent_span_id:
        chain.append(spans[chain[-1].parent_span_id])
    assert chain[-1].service == "vcs-intake"
    assert chain[-1].kind == 2  # SPAN_KIND_SERVER: the POST /v1/requests itself
    assert {s.trace_id for s in (*chain, allocation, mailing)} == {submitted[0]}
    # the front door's access line of the POST names the trace, so a logged request leads to it
    (intake,) = [p for p in processes if p.name == "intake"]
    intake_lines = [json.loads(line) for line in intake.log_path.read_text().splitlines() if line]
    (post_line,) = [
        line
        for line in intake_lines
        if line.get("event") == "http.request"
        and line.get("http_request_id") == answer.headers["x-request-id"]
    ]
    assert post_line["trace_id"] == submitted[0]
    # the log lines written while handling carry the trace and span ids
    (allocator,) = [p for p in processes if p.name == "allocator"]
    lines = [json.loads(line) for line in allocator.log_path.read_text().splitlines() if line]
    (assigned_line,) = [
        line
        for line in lines
        if line.get("event") == "allocation.assigned" and line.get("request_id") == request_id
    ]
    assert (assigned_line["trace_id"], assigned_line["span_id"]) == assigned


async def test_without_an_endpoint_a_service_exports_nothing_and_connects_nowhere(
    start_services: StartServices,
    service_env: dict[str, str],
    http: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VCS_OTLP_ENDPOINT", raising=False)  # the service takes os.environ too
    assert "VCS_OTLP_ENDPOINT" not in service_env
    await start_services("intake")
    with running_collector() as (collector, endpoint):
        # A tripwire: any OTLP exporter made without an endpoint of ours would read these
        # (the OpenTelemetry defaults) and come to the collector, within 200 ms or at exit.
        tripwire = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        # The allocator in a fresh interpreter (not forked from the tests' warm parent, which
        # leaves with os._exit) ends as `vcs run` ends it: SIGTERM, a clean exit, and the
        # tracer provider's shutdown at exit, which flushes any exporter there is. Once it
        # has exited, whatever it would ever have sent has been sent.
        allocator = ServiceProcess(
            "allocator", {**service_env, **tripwire}, tmp_path / "allocator.log", launch_fresh
        ).start()
        try:
            await allocator.wait_ready(within=60)
            answer = await http.post("/v1/requests", json=request_body())
            request_id = answer.json()["request_id"]
            await wait_status(http, request_id, "assigned")
        finally:
            allocator.stop()
        assert allocator.process is not None
        assert allocator.process.wait() == 0  # a clean exit, so the shutdown ran
        assert collector.connections == 0
        assert collector.spans == []

    # The spans were still made: the allocator's line about the assignment names its trace.
    lines = [json.loads(line) for line in allocator.log_path.read_text().splitlines() if line]
    (assigned_line,) = [
        line
        for line in lines
        if line.get("event") == "allocation.assigned" and line.get("request_id") == request_id
    ]
    assert len(assigned_line["trace_id"]) == 32


async def test_the_front_door_makes_one_server_span_per_request_and_none_for_health_checks(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    """One telemetry layer: a request is one span of kind SERVER named after its route, child
    of the caller's ``traceparent``, with no span per dependency, endpoint or ASGI message
    inside it; ``/healthz`` makes none."""
    caller_trace, caller_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    with running_collector() as (collector, endpoint):
        await start_services(
            "intake", extra_env={"VCS_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        )
        answer = await http.post(
            "/v1/requests",
            json=request_body(),
            headers={
                "Idempotency-Key": "trace-front-door",
                "traceparent": f"00-{caller_trace}-{caller_span}-01",
            },
        )
        assert answer.status_code == 202, answer.text
        assert (await http.get("/healthz")).status_code == 200
        # Read after the health check: a span for it would be exported no later than this one.
        read = await http.get(f"/v1/requests/{answer.json()['request_id']}")
        assert read.status_code == 200, read.text

        async def exported() -> list[ReceivedSpan]:
            return [s for s in collector.spans if s.name == "GET /v1/requests/{request_id}"]

        await eventually(exported, what="the read's span at the collector")

    spans = [s for s in collector.spans if s.service == "vcs-intake"]
    (submit,) = [s for s in spans if s.trace_id == caller_trace]
    assert submit.name == "POST /v1/requests"
    assert submit.kind == 2  # SPAN_KIND_SERVER
    assert submit.parent_span_id == caller_span
    assert sorted(s.name for s in spans) == ["GET /v1/requests/{request_id}", "POST /v1/requests"]
