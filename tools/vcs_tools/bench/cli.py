"""The benchmark's command line and the order of its runs (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from vcs_allocator.domain import PoolEntry
from vcs_shared.credentials import new_key
from vcs_shared.logging import configure_logging
from vcs_tools.bench import workload
from vcs_tools.bench.floor import FloorResult, measure_floor
from vcs_tools.bench.limit import measure_store_limit
from vcs_tools.bench.load import run_burst, run_steady
from vcs_tools.bench.plot import plot
from vcs_tools.bench.profiling import profiled
from vcs_tools.bench.report import Scenario, bench_line, table
from vcs_tools.bench.stack import Stack, StackConfig, cpu_seconds, stack
from vcs_tools.devstack import EmbeddedStore, SmtpSink
from vcs_tools.localrun import DEFAULT_AMQP_URL

QUICK_OFFICES = 100


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vcs_tools.bench",
        description="DOPA VCS benchmark: the whole path against its store-only floor",
    )
    parser.add_argument("--quick", action="store_true", help="100 offices, steady 10 s")
    parser.add_argument("--offices", type=int, default=None, help="only the first N offices")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP requests in flight")
    parser.add_argument(
        "--floor-concurrency",
        type=int,
        default=1,
        help="also time the floor with N concurrent allocations (the faster run counts)",
    )
    parser.add_argument("--steady-rate", type=float, default=10.0)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--allocators", type=int, default=1)
    parser.add_argument("--scale-allocators", type=int, default=3)
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also the scaling runs (more allocators, twice the requests; adds ~15 min)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        nargs="?",
        const=Path("bench-results/bench.svg"),
        default=None,
        help="write completions and latency over time per stage (SVG; default path "
        "bench-results/bench.svg)",
    )
    parser.add_argument("--stall-timeout", type=float, default=60.0)
    parser.add_argument("--results", type=Path, default=Path("bench-results"))
    parser.add_argument(
        "--profile", action="store_true", help="py-spy flame graphs of the main burst"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.offices = args.offices or QUICK_OFFICES
        args.steady_seconds = min(args.steady_seconds, 10.0)
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def floors(
    url: str, keys: str, rooms: list[PoolEntry], asks: list[workload.Ask], concurrency: int
) -> list[FloorResult]:
    results = []
    for width in sorted({1, concurrency}):
        result = await measure_floor(url, keys, rooms, asks, concurrency=width)
        say(f"  floor, {len(asks)} requests, concurrency {width}: {result.seconds:.2f}s")
        results.append(result)
    return results


async def measured_burst(
    args: argparse.Namespace,
    running: Stack,
    asks: list[workload.Ask],
    label: str,
    allocators: int,
    floor: list[FloorResult],
    store_pid: int | None,
    profile: bool,
) -> Scenario:
    """One burst on a ready stack, with the CPU seconds of every process (the store's too),
    the store commands and the claim races the allocators lost during it: the scaling runs
    are compared on those as well as on wall time, which a shared machine makes noisy."""
    pids = {f"{p.name}-{i}": p.pid for i, p in enumerate(running.processes)}
    if store_pid is not None:
        pids["nx-27017"] = store_pid
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    commands_before = await running.store_commands()
    races_before = await running.claim_races_lost()
    with profiled(pids, args.results / "profiles", enabled=profile):
        run = await run_burst(
            running, asks, concurrency=args.concurrency, stall_timeout=args.stall_timeout
        )
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    return Scenario(
        label,
        allocators,
        run,
        floor,
        running.peak_rss_mb(),
        cpu,
        store_commands=await running.store_commands() - commands_before,
        claim_races_lost=await running.claim_races_lost() - races_before,
    )


async def bench(
    args: argparse.Namespace,
    mongodb_url: str,
    smtp_port: int,
    store_pid: int | None,
    scenarios: list[Scenario],
) -> list[str]:
    """Runs the scenarios, appending each to ``scenarios`` as it is measured (an interrupted
    run prints those)."""
    keys = new_key()
    jwt_secret = secrets.token_urlsafe(48)
    config = StackConfig(
        amqp_url=os.environ.get("VCS_AMQP_URL", DEFAULT_AMQP_URL),
        mongodb_url=mongodb_url,
        credentials_keys=keys,
        jwt_secret=jwt_secret,
        smtp_port=smtp_port,
        log_dir=args.results / "logs",
    )
    offices = workload.offices(args.offices)
    rooms = workload.national_pool(offices)
    say(f"{len(offices)} offices, {len(rooms)} rooms in {len({r.pool for r in rooms})} provinces")

    one_wave = workload.with_tokens(workload.burst(offices), jwt_secret)
    say("floor:")
    floor_one = await floors(mongodb_url, keys, rooms, one_wave, args.floor_concurrency)
    say("store limit:")
    limit = await measure_store_limit(mongodb_url, one_wave, concurrency=args.concurrency)
    say(f"  {limit.requests} requests, concurrency {limit.concurrency}: {limit.seconds:.2f}s")
    steady: Scenario | None = None
    async with stack(config, rooms, allocators=args.allocators, label="burst") as running:
        say(f"burst: {len(one_wave)} requests, {args.allocators} allocator(s)")
        main = await measured_burst(
            args, running, one_wave, "burst", args.allocators, floor_one, store_pid, args.profile
        )
        main.limit = limit
        scenarios.append(main)
        say(f"  {main.run.seconds:.2f}s, lost {len(main.run.lost)}")
        if args.steady_seconds > 0:
            count = int(args.steady_rate * args.steady_seconds)
            say(f"steady: {args.steady_rate:g}/s for {args.steady_seconds:g}s")
            run = await run_steady(
                running,
                workload.with_tokens(workload.steady(offices, count), jwt_secret),
                rate=args.steady_rate,
                stall_timeout=args.stall_timeout,
            )
            label = f"steady {args.steady_rate:g}/s x {args.steady_seconds:g}s"
            steady = Scenario(label, args.allocators, run, rss_mb=running.peak_rss_mb())
            scenarios.append(steady)
            say(f"  p50 {run.percentile(50):.0f} ms, p99 {run.percentile(99):.0f} ms")

    if args.scaling:
        two_waves = workload.with_tokens(workload.burst(offices, waves=2), jwt_secret)
        say("floor, 2x requests:")
        floor_two = await floors(mongodb_url, keys, rooms, two_waves, args.floor_concurrency)
        # A burst runs slower right after others on the same store (0.2-0.8 s at 928
        # requests, whichever allocators): the 2x pair runs in the other order, so that bias
        # does not always fall on the scaled side.
        runs = [
            ("burst", one_wave, floor_one, args.scale_allocators),
            ("burst 2x requests", two_waves, floor_two, args.scale_allocators),
            ("burst 2x requests", two_waves, floor_two, args.allocators),
        ]
        for label, asks, floor, allocators in runs:
            name = f"{label}, {allocators} alloc"
            async with stack(config, rooms, allocators=allocators, label=name) as running:
                say(f"{name}: {len(asks)} requests")
                scenario = await measured_burst(
                    args, running, asks, name, allocators, floor, store_pid, profile=False
                )
                scenarios.append(scenario)
                say(
                    f"  {scenario.run.seconds:.2f}s, lost {len(scenario.run.lost)}, "
                    f"claim races lost {scenario.claim_races_lost}"
                )
    if args.plot is not None:
        say(f"plot: {plot(scenarios, args.plot)}")
    return [table(scenarios), bench_line(main, steady, scenarios)]


async def run(
    args: argparse.Namespace, stopped_by: list[signal.Signals], scenarios: list[Scenario]
) -> list[str]:
    """The whole run; SIGTERM or SIGHUP (a ``timeout``, a CI limit, a closed terminal) cancels
    it like Ctrl-C, so every stack, the store and the sink are stopped on the way out."""
    task = asyncio.current_task()
    assert task is not None

    def cancel(sig: signal.Signals) -> None:
        stopped_by.append(sig)
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        asyncio.get_running_loop().add_signal_handler(sig, cancel, sig)
    with tempfile.TemporaryDirectory(prefix="vcs-bench-") as scratch:
        store: EmbeddedStore | None = None
        mongodb_url = os.environ.get("VCS_MONGODB_URL")
        if not mongodb_url:
            store = EmbeddedStore(Path(scratch) / "store").start()
            mongodb_url = store.url
        sink = SmtpSink().start()
        try:
            store_pid = store.process.pid if store and store.process else None
            return await bench(args, mongodb_url, sink.port, store_pid, scenarios)
        finally:
            sink.stop()
            if store is not None:
                store.stop()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("bench", json=True, level="warning")
    shutil.rmtree(args.results / "logs", ignore_errors=True)
    args.results.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stopped_by: list[signal.Signals] = []
    scenarios: list[Scenario] = []
    try:
        lines = asyncio.run(run(args, stopped_by, scenarios))
    except (asyncio.CancelledError, KeyboardInterrupt):
        if scenarios:  # what was measured before the interruption
            print(table(scenarios), flush=True)
        if not stopped_by:
            say("bench interrupted; everything it started is stopped")
            sys.exit(130)
        say(f"bench stopped by {stopped_by[0].name}; everything it started is stopped")
        sys.exit(128 + stopped_by[0])
    say(f"bench took {time.monotonic() - started:.0f}s")
    output = "\n".join(lines)
    (args.results / "last.txt").write_text(output + "\n", encoding="utf-8")
    print(output, flush=True)
