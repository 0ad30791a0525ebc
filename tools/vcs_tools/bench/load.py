"""Driving a stack over HTTP: a burst as fast as it goes, and a steady rate.

Completion is not polled: the stack's tap queue sees every final event
(``credentials.delivered``, ``credentials.failed``, ``request.rejected``) the
moment the broker routes it, with the request id as its CloudEvents subject.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import h11

from vcs_tools.bench.http1 import Connection
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


async def _submit(connection: Connection, ask: Ask) -> Submitted:
    record = Submitted(sent_at=time.perf_counter())
    headers = [
        ("Authorization", f"Bearer {ask.token}"),
        ("Idempotency-Key", ask.idempotency_key()),
    ]
    try:
        status, body = await connection.post(
            "/v1/requests", json.dumps(ask.body()).encode(), headers
        )
        record.status_code = status
        if status == 202:
            record.request_id = json.loads(body)["request_id"]
    except (OSError, TimeoutError, h11.ProtocolError):
        record.status_code = -1
    record.accepted_at = time.perf_counter()
    return record


async def run_burst(
    stack: Stack, asks: Sequence[Ask], *, concurrency: int, stall_timeout: float
) -> RunResult:
    """Every ask submitted at once (at most ``concurrency`` in flight); until all are final.

    ``concurrency`` senders, each with a keep-alive connection of its own
    (:mod:`vcs_tools.bench.http1`), take the asks in order. (A shared pool of
    ``concurrency`` connections, as httpx keeps one, looked at every connection with a
    system call whenever a request started or ended: it cost the load client more CPU than
    the intake spent serving the burst, on the two cores the services share.)
    """
    submitted: list[Submitted] = [Submitted(sent_at=0.0) for _ in asks]
    work = iter(enumerate(asks))
    senders = [Connection(stack.intake_url) for _ in range(min(concurrency, len(asks)))]

    async def send_with(connection: Connection) -> None:
        for index, ask in work:
            submitted[index] = await _submit(connection, ask)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(send_with(connection) for connection in senders))
    finally:
        await asyncio.gather(*(connection.close() for connection in senders))
    return await _settle(stack, submitted, started, stall_timeout)


async def run_steady(
    stack: Stack, asks: Sequence[Ask], *, rate: float, stall_timeout: float
) -> RunResult:
    """Submits ``asks`` at ``rate`` per second on a fixed schedule (open loop), until all final.

    Open loop: a slow answer does not delay the next submit, so queueing in the
    system shows up in the latencies instead of lowering the offered rate. Each submit
    takes an idle connection, or opens one when none is idle.
    """
    idle: list[Connection] = []
    opened: list[Connection] = []

    async def submit(ask: Ask) -> Submitted:
        if not idle:
            opened.append(Connection(stack.intake_url))
            idle.append(opened[-1])
        connection = idle.pop()
        try:
            return await _submit(connection, ask)
        finally:
            idle.append(connection)

    started = time.perf_counter()
    tasks = []
    try:
        for i, ask in enumerate(asks):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit(ask)))
        submitted = await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(connection.close() for connection in opened))
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
