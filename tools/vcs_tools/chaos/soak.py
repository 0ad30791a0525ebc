"""One soak: the system under load and faults for some minutes, then the checker's verdict.

The order matters: load and faults run together until time is up; the last fault
is undone; the clients finish the calls they were retrying; then the soak waits
until every accepted request is final (or nothing moves for a while), until no
event and no mail arrives any more, and only then reads what the checker needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from vcs_shared.auth import TokenCodec
from vcs_shared.offices import all_offices
from vcs_shared.topology import Topology
from vcs_tools.chaos.check import FINAL_STATUSES, SeenDeadLetter, Verdict, verdict
from vcs_tools.chaos.clients import Caller, Clients, Ledger
from vcs_tools.chaos.faults import Chaos, Injected
from vcs_tools.chaos.record import (
    EventRecorder,
    dead_letters,
    final_statuses,
    mails_quiet,
    read_mails,
)
from vcs_tools.chaos.system import NAMESPACE, POOL_PROVINCES, System, running_system
from vcs_tools.devstack import SERVICES

QUIET = 5.0  # no event and no mail for this long: the system has nothing left to do


@dataclass(frozen=True, slots=True)
class SoakConfig:
    minutes: float = 5.0
    rate: float = 10.0
    fault_every: float = 20.0
    seed: int = 2569
    data_dir: Path = Path(".data/chaos")
    stall_after: float = 180.0  # give up waiting for final states when none moved this long


@dataclass(frozen=True, slots=True)
class SoakResult:
    verdict: Verdict
    faults: list[Injected]
    ledger: Ledger
    gave_up: str | None = None
    """Why the supervisor stopped the system early (a crash loop), if it did."""

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.gave_up is None

    def line(self, minutes: float) -> str:
        return self.verdict.line(minutes=minutes, faults=len(self.faults))


async def soak(config: SoakConfig, say: Callable[[str], None] = print) -> SoakResult:
    async with running_system(config.data_dir, say) as system:
        say(f"chaos: system up on {system.intake_url}; soaking for {config.minutes:g} min")
        recorder = await EventRecorder.start(system.broker.url, Topology(NAMESPACE))
        try:
            return await _soak(config, system, recorder, say)
        finally:
            await recorder.close()


async def _soak(
    config: SoakConfig, system: System, recorder: EventRecorder, say: Callable[[str], None]
) -> SoakResult:
    codec = TokenCodec(system.jwt_secret)
    operator = codec.issue_operator("chaos", ttl=timedelta(hours=12), national=True).token
    callers = [
        Caller(office, codec.issue_office(office.district_code, ttl=timedelta(days=1)).token)
        for office in all_offices()
        if office.province_code in POOL_PROVINCES
    ]
    watching, time_up = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(system.watch(watching, on_give_up=time_up))
    chaos = Chaos(
        send=system.send,
        stop_broker=system.stop_broker,
        start_broker=system.start_broker,
        services=SERVICES,
        seed=config.seed,
    )
    try:
        async with httpx.AsyncClient(base_url=system.intake_url, timeout=15) as http:
            clients = Clients(system.intake_url, callers, rate=config.rate, seed=config.seed)
            reporter = asyncio.create_task(_progress(clients.ledger, chaos, time_up, say))
            timer = asyncio.get_running_loop().call_later(config.minutes * 60, time_up.set)
            try:
                await asyncio.gather(clients.run(time_up), chaos.run(config.fault_every, time_up))
            finally:
                timer.cancel()
                time_up.set()
                await reporter
            statuses: dict[str, str | None] = dict.fromkeys(clients.ledger.accepted)
            letters: list[SeenDeadLetter] = []
            if system.gave_up is None:
                say(f"chaos: time is up; waiting for {len(statuses)} requests")
                statuses = await final_statuses(
                    http,
                    operator,
                    list(statuses),
                    final=FINAL_STATUSES,
                    stall_after=config.stall_after,
                )
                await recorder.quiet(QUIET)
                await mails_quiet(system.mail_dir, QUIET)
                letters = await dead_letters(http, operator)
            # else the system is down and nothing more can be asked: every request counts as lost
    finally:
        watching.set()
        await watcher
    killed = [f.at for f in chaos.injected if f.kind == "kill" and f.target == "notifier"]
    found = verdict(statuses, recorder.events, read_mails(system.mail_dir), letters, killed)
    return SoakResult(found, chaos.injected, clients.ledger, system.gave_up)


async def _progress(
    ledger: Ledger, chaos: Chaos, done: asyncio.Event, say: Callable[[str], None]
) -> None:
    """A line every 30 s, so a long run shows it is alive."""
    while True:
        try:
            await asyncio.wait_for(done.wait(), timeout=30)
            return
        except TimeoutError:
            last = chaos.injected[-1] if chaos.injected else None
            say(
                f"chaos: accepted={len(ledger.accepted)} cancelled={len(ledger.cancelled)} "
                f"retries={ledger.retries} faults={len(chaos.injected)}"
                + (f" (last: {last.kind} {last.target} {last.seconds:g}s)" if last else "")
            )
