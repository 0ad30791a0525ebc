"""The benchmark's readable table and its one machine-readable closing line."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from vcs_tools.bench.floor import FloorResult
from vcs_tools.bench.limit import COMMANDS_PER_REQUEST, StoreLimit
from vcs_tools.bench.load import RunResult


@dataclass
class Scenario:
    """One measured run: a burst (with its floor) or the steady load."""

    label: str
    allocators: int
    run: RunResult
    floors: list[FloorResult] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    limit: StoreLimit | None = None
    store_commands: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Store commands the stack's processes sent during the run, by (process, command,
    collection)."""
    claim_races_lost: int | None = None
    """Claims the allocators lost at the slots' unique index during the run (each one costs
    the allocation a holder read, an undo and another slot read and claim)."""

    @property
    def limit_ratio(self) -> float | None:
        return self.run.seconds / self.limit.seconds if self.limit else None

    @property
    def commands_per_request(self) -> float | None:
        accepted = self.run.accepted
        total = sum(self.store_commands.values())
        return total / accepted if total and accepted else None

    @property
    def floor_s(self) -> float | None:
        return min((f.seconds for f in self.floors), default=None)

    @property
    def ratio(self) -> float | None:
        floor = self.floor_s
        return self.run.seconds / floor if floor else None


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(scenarios: list[Scenario]) -> str:
    lines = [
        f"{'scenario':<28}{'requests':>9}{'alloc':>6}{'full_s':>8}{'floor_s':>8}{'ratio':>7}"
        f"{'req/s':>8}{'p50_ms':>8}{'p95_ms':>8}{'p99_ms':>8}{'lost':>6}{'refused':>8}"
    ]
    for s in scenarios:
        run = s.run
        lines.append(
            f"{s.label:<28}{len(run.submitted):>9}{s.allocators:>6}{_num(run.seconds):>8}"
            f"{_num(s.floor_s):>8}{_num(s.ratio):>7}"
            f"{_num(run.accepted / run.seconds if run.seconds else None, 0):>8}"
            f"{_num(run.percentile(50), 0):>8}{_num(run.percentile(95), 0):>8}"
            f"{_num(run.percentile(99), 0):>8}{len(run.lost):>6}{run.refused:>8}"
        )
    lines.append("")
    lines.append(
        f"store limit (a bare client, the {COMMANDS_PER_REQUEST} writes a request needs, "
        "same concurrency):"
    )
    for s in scenarios:
        if s.limit is not None:
            lines.append(
                f"  {s.label:<28} {s.limit.requests} requests, concurrency "
                f"{s.limit.concurrency}: {s.limit.seconds:.2f}s; the full path "
                f"{_num(s.limit_ratio)}x that, {_num(s.commands_per_request, 1)} store "
                "commands per request"
            )
    lines.append("")
    lines.extend(_commands_breakdown(scenarios))
    lines.append("floor (allocator handler + store in one process, no HTTP, no broker):")
    shown: set[int] = set()
    for s in scenarios:
        for f in s.floors:
            if id(f) in shown:
                continue
            shown.add(id(f))
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(f.outcomes.items()))
            lines.append(
                f"  {f.requests:>5} requests, concurrency {f.concurrency:>3}: "
                f"{f.seconds:6.2f}s ({f.requests / f.seconds:5.0f}/s; {outcomes})"
            )
    lines.append("")
    lines.append("median ms per stage (submit → request.submitted → room.assigned → delivered):")
    for s in scenarios:
        stages = "  ".join(f"{k} {v:.0f}" for k, v in s.run.stages_ms.items())
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s.run.outcomes.items()))
        lines.append(f"  {s.label:<28} {stages}   [{outcomes}]")
    lines.append("")
    lines.append("seconds from start until every request had passed each stage:")
    for s in scenarios:
        done = "  ".join(f"{k} {v:.1f}" for k, v in s.run.stage_done_s.items())
        lines.append(f"  {s.label:<28} {done}")
    lines.append("")
    lines.append("CPU seconds used during the burst, per process (2 cores shared):")
    for s in scenarios:
        if s.cpu_s:
            cpu = "  ".join(f"{k} {v:.1f}" for k, v in s.cpu_s.items())
            lines.append(
                f"  {s.label:<28} {cpu}  total {sum(s.cpu_s.values()):.1f}"
                f"  (burst {s.run.seconds:.1f}s wall)"
            )
    lines.append("")
    lines.append("store commands and claim races lost (slots' unique index) during the burst:")
    for s in scenarios:
        if s.store_commands:
            lines.append(
                f"  {s.label:<28} {sum(s.store_commands.values()):>6} commands"
                f"  {_num(s.commands_per_request, 1):>5} per request"
                f"  {s.claim_races_lost if s.claim_races_lost is not None else '-':>4} races lost"
            )
    lines.append("")
    lines.append("peak RSS (VmHWM) per service process, MiB:")
    for s in scenarios:
        if s.rss_mb:
            rss = "  ".join(f"{k} {v:.0f}" for k, v in s.rss_mb.items())
            lines.append(f"  {s.label:<28} {rss}")
    return "\n".join(lines)


def _commands_breakdown(scenarios: list[Scenario]) -> list[str]:
    """Per scenario with counted commands: store commands per accepted request by process,
    command and collection, largest first, with each process's subtotal."""
    lines: list[str] = []
    for s in scenarios:
        accepted = s.run.accepted
        if not s.store_commands or not accepted:
            continue
        lines.append(f"store commands per request by service, command and collection ({s.label}):")
        processes: Counter[str] = Counter()
        for (process, _, _), count in s.store_commands.items():
            processes[process] += count
        for process, subtotal in processes.most_common():
            lines.append(f"  {process:<12} {subtotal / accepted:5.2f}")
            rows = sorted(
                ((c, n, k) for (p, c, k), n in s.store_commands.items() if p == process and n),
                key=lambda row: -row[1],
            )
            for command, count, collection in rows:
                lines.append(f"    {command:<16} {collection:<24} {count / accepted:5.2f}")
        lines.append("")
    return lines


def bench_line(main: Scenario, steady: Scenario | None, scenarios: list[Scenario]) -> str:
    """``BENCH n=… full_s=… floor_s=… floor_ratio=… store_limit_s=… limit_ratio=…
    cmds_per_req=… p50_ms=… p99_ms=… rss_mb_max=… lost=…``.

    ``lost`` counts every run; ``rss_mb_max`` is the largest peak of any service process.
    """
    rss = max((v for s in scenarios for v in s.rss_mb.values()), default=0.0)
    lost = sum(len(s.run.lost) for s in scenarios)
    p50 = steady.run.percentile(50) if steady else float("nan")
    p99 = steady.run.percentile(99) if steady else float("nan")
    return (
        f"BENCH n={len(main.run.submitted)} full_s={main.run.seconds:.2f} "
        f"floor_s={_num(main.floor_s)} floor_ratio={_num(main.ratio)} "
        f"store_limit_s={_num(main.limit.seconds if main.limit else None)} "
        f"limit_ratio={_num(main.limit_ratio)} cmds_per_req={_num(main.commands_per_request, 1)} "
        f"p50_ms={p50:.0f} p99_ms={p99:.0f} rss_mb_max={rss:.0f} lost={lost}"
    )
