"""``vcs chaos [--minutes 5] [--rate 10] [--fault-every 20] [--seed N] [--data-dir D]``.

Prints progress, then one line ``CHAOS minutes=… requests=… faults=… lost=…
double_booked=… duplicate_mails=… resent=… republished=… dead_letters=… unexplained=…``
and exits 1 when any count that must be 0 is not (the details above it say which
request and why).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from vcs_tools.chaos.soak import SoakConfig, soak


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SoakConfig()
    parser.add_argument("--minutes", type=float, default=defaults.minutes)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="submits per second")
    parser.add_argument(
        "--fault-every", type=float, default=defaults.fault_every, help="seconds between faults"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="same seed, same run")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=defaults.data_dir,
        help="broker, store, mails and logs of the soak (emptied first; default .data/chaos)",
    )


def run(args: argparse.Namespace) -> int:
    if args.minutes <= 0 or args.rate <= 0 or args.fault_every <= 0:
        print("chaos: --minutes, --rate and --fault-every must be positive", file=sys.stderr)
        return 2
    for noisy in ("aio_pika", "aiormq"):  # the recorder's reconnects during a broker outage
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    shutil.rmtree(args.data_dir, ignore_errors=True)
    config = SoakConfig(
        minutes=args.minutes,
        rate=args.rate,
        fault_every=args.fault_every,
        seed=args.seed,
        data_dir=args.data_dir.absolute(),
    )
    result = asyncio.run(soak(config, say=lambda text: print(text, flush=True)))
    for fault in result.faults:
        print(f"fault: {fault.kind} {fault.target} {fault.seconds:g}s")
    for detail in result.verdict.details:
        print(detail)
    if result.gave_up is not None:
        print(f"the supervisor gave up, so the soak ended early: {result.gave_up}")
    print(result.line(args.minutes), flush=True)
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vcs_tools.chaos", description=__doc__)
    add_arguments(parser)
    sys.exit(run(parser.parse_args(argv)))
