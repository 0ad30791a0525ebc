"""Driving a stack over HTTP: a burst as fast as it goes, and a steady rate.

Completion is not polled: the stack's tap queue sees every final event
(``credentials.delivered``, ``credentials.failed``, ``request.rejected``) the
moment the broker routes it, with the request id as its CloudEvents subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from vcs_tools.bench.stack import FINAL_EVENTS, Stack
from vcs_tools.bench.workload import Ask

STAGES = (
    ("intake", "request.submitted"),
    ("allocator", "room.assigned"),
    ("notifier", "credentials.delivered"),
)


@dataclass
class Submitted:
    sent_at: float
    accepted_at: float = 0.0
    request_id: str | None = None
    status_code: int = 0


@dataclass
class RunResult:
    """What one burst or steady run measured; times are seconds from ``perf_counter``."""

    submitted: list[Submitted]
    started: float
    finished: float
    lost: list[str]
    outcomes: dict[str, int]
    latencies_ms: list[float] = field(default_factory=list)
    stages_ms: dict[str, float] = field(default_factory=dict)
    stage_done_s: dict[str, float] = field(default_factory=dict)
    timeline: dict[str, list[float]] = field(default_factory=dict)
    """Per stage, the seconds from the start at which each request passed it (for the plot)."""
    latency_points: list[tuple[float, float]] = field(default_factory=list)
    """(seconds from the start at which it was delivered, submit-to-delivered ms)."""

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.submitted if s.request_id)

    @property
    def refused(self) -> int:
        return len(self.submitted) - self.accepted

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


async def _submit(client: httpx.AsyncClient, ask: Ask) -> Submitted:
    record = Submitted(sent_at=time.perf_counter())
    try:
        headers = {
            "Authorization": f"Bearer {ask.token}",
            "Idempotency-Key": ask.idempotency_key(),
        }
        response = await client.post("/v1/requests", json=ask.body(), headers=headers)
        record.status_code = response.status_code
        if response.status_code == 202:
            record.request_id = response.json()["request_id"]
    except httpx.HTTPError:
        record.status_code = -1
    record.accepted_at = time.perf_counter()
    return record


def _client(stack: Stack, connections: int, tls: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """``tls``: a context shared by several clients (each one loading the CA bundle costs
    milliseconds of CPU)."""
    return httpx.AsyncClient(
        base_url=stack.intake_url,
        timeout=120,
        verify=tls or True,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def run_burst(
    stack: Stack, asks: Sequence[Ask], *, concurrency: int, stall_timeout: float
) -> RunResult:
    """Every ask submitted at once (at most ``concurrency`` in flight); until all are final.

    ``concurrency`` senders, each with a client of its own holding one keep-alive
    connection, take the asks in order. One shared client with ``concurrency`` connections
    sends the same requests, but httpcore's pool looks at every connection (a system call
    each) whenever a request starts or ends: that cost the load client more CPU than the
    intake spent serving the burst, on the two cores the services share.
    """
    submitted: list[Submitted] = [Submitted(sent_at=0.0) for _ in asks]
    work = iter(enumerate(asks))
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as clients:
        senders = [
            await clients.enter_async_context(_client(stack, 1, tls))
            for _ in range(min(concurrency, len(asks)))
        ]

        async def send_with(client: httpx.AsyncClient) -> None:
            for index, ask in work:
                submitted[index] = await _submit(client, ask)

        started = time.perf_counter()
        await asyncio.gather(*(send_with(client) for client in senders))
    return await _settle(stack, submitted, started, stall_timeout)


async def run_steady(
    stack: Stack, asks: Sequence[Ask], *, rate: float, stall_timeout: float
) -> RunResult:
    """Submits ``asks`` at ``rate`` per second on a fixed schedule (open loop), until all final.

    Open loop: a slow answer does not delay the next submit, so queueing in the
    system shows up in the latencies instead of lowering the offered rate.
    """
    async with _client(stack, 200) as client:
        started = time.perf_counter()
        tasks = []
        for i, ask in enumerate(asks):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_submit(client, ask)))
        submitted = await asyncio.gather(*tasks)
    return await _settle(stack, submitted, started, stall_timeout)


async def _settle(
    stack: Stack, submitted: Sequence[Submitted], started: float, stall_timeout: float
) -> RunResult:
    ids = [s.request_id for s in submitted if s.request_id]
    lost = await stack.tap.wait_finals(ids, stall_timeout=stall_timeout)
    finals = [t for i in ids if (t := stack.tap.final_at(i)) is not None]
    outcomes: Counter[str] = Counter()
    latencies = []
    points = []
    timeline: dict[str, list[float]] = {kind: [] for _, kind in STAGES}
    for record in submitted:
        if record.request_id is None:
            outcomes[f"http {record.status_code}"] += 1
            continue
        stamps = stack.tap.seen.get(record.request_id, {})
        kind = next((k for k in FINAL_EVENTS if k in stamps), "lost")
        outcomes[kind] += 1
        for _, stage in STAGES:
            if stage in stamps:
                timeline[stage].append(stamps[stage] - started)
        if kind == "credentials.delivered":
            latencies.append((stamps[kind] - record.sent_at) * 1000)
            points.append((stamps[kind] - started, latencies[-1]))
    return RunResult(
        submitted=list(submitted),
        started=started,
        finished=max(finals, default=started),
        lost=lost,
        outcomes=dict(outcomes),
        latencies_ms=latencies,
        stages_ms=_stages(stack, submitted),
        stage_done_s=_stage_done(stack, submitted, started),
        timeline={stage: sorted(times) for stage, times in timeline.items()},
        latency_points=sorted(points),
    )


def _stages(stack: Stack, submitted: Sequence[Submitted]) -> dict[str, float]:
    """Median time each service adds per request (submit → its event), and the HTTP answer.

    The intake publishes ``request.submitted`` before it answers, so its stage
    runs from the submit to that event, and the HTTP answer is shown apart.
    """
    gaps: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    gaps["http answer"] = []
    for record in submitted:
        if record.request_id is None:
            continue
        gaps["http answer"].append((record.accepted_at - record.sent_at) * 1000)
        stamps = stack.tap.seen.get(record.request_id, {})
        previous = record.sent_at
        for name, kind in STAGES:
            if kind not in stamps:
                break
            gaps[name].append((stamps[kind] - previous) * 1000)
            previous = stamps[kind]
    return {name: statistics.median(values) for name, values in gaps.items() if values}


def _stage_done(stack: Stack, submitted: Sequence[Submitted], started: float) -> dict[str, float]:
    """Seconds from the start until each service had emitted its event for every request.

    In a burst this shows which stage the others wait for: a stage that ends
    just after the one before it keeps up, one that ends much later is the limit.
    """
    done: dict[str, float] = {"http": max((s.accepted_at for s in submitted), default=started)}
    for name, kind in STAGES:
        stamps = [
            stack.tap.seen[s.request_id][kind]
            for s in submitted
            if s.request_id and kind in stack.tap.seen.get(s.request_id, {})
        ]
        if stamps:
            done[name] = max(stamps)
    return {name: moment - started for name, moment in done.items()}
