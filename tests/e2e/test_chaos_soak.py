"""The short soak of ``make chaos``: two minutes of load with a fault every 15 seconds.

The whole system of ``make run`` (supervised store, mail sink and services) runs on
a private RabbitMQ node; offices submit and cancel over HTTP with idempotent
retries while the broker is stopped, services are SIGKILLed, the store is frozen
and the SMTP server stops answering. The checker judges only from the public
contracts (HTTP, events, mails, the dead-letter API).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vcs_tools.chaos.faults import KINDS
from vcs_tools.chaos.soak import SoakConfig, soak

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


async def test_nothing_is_lost_booked_twice_or_sent_twice_under_random_faults(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    config = SoakConfig(minutes=2, rate=4, fault_every=15, seed=47, data_dir=tmp_path / "chaos")

    result = await soak(config, say=lines.append)

    print(result.line(config.minutes))  # the figures, in the test log
    assert {fault.kind for fault in result.faults} == set(KINDS)
    assert len(result.faults) >= 6
    assert len(result.ledger.accepted) >= 200
    assert result.ledger.unanswered == 0
    assert result.ledger.cancelled  # some offices changed their minds
    assert any("restarting it" in line for line in lines)  # a killed service came back
    assert result.verdict.details == ()
    assert result.gave_up is None
    assert result.verdict.ok, result.line(config.minutes)
