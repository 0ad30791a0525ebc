"""``vcs``: the operators' and developers' command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vcs_tools import dlq, pool, stuck, user
from vcs_tools.chaos import cli as chaos
from vcs_tools.contract import write_contract
from vcs_tools.localrun import run_local
from vcs_tools.token import add_token_parser, run_token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vcs", description="DOPA VCS operations")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the whole system locally until Ctrl-C")
    run.add_argument("--port", type=int, default=8000, help="intake HTTP port")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".data"),
        help="secrets, store, mails and logs (default .data; `vcs token` reads .data)",
    )
    add_token_parser(commands)

    contract = commands.add_parser(
        "contract", help="write docs/asyncapi.yaml and docs/schemas/*.json"
    )
    contract.add_argument("--docs", type=Path, default=Path("docs"))

    chaos.add_arguments(
        commands.add_parser(
            "chaos", help="soak the system under random faults and check nothing was lost"
        )
    )
    dlq.add_parser(commands)
    pool.add_parser(commands)
    stuck.add_parser(commands)
    user.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "chaos":
        sys.exit(chaos.run(args))
    if args.command == "dlq":
        sys.exit(dlq.run(args))
    if args.command == "requests":
        sys.exit(stuck.run(args))
    if args.command == "pool":
        sys.exit(pool.run(args))
    if args.command == "user":
        sys.exit(user.run(args))
    if args.command == "run":
        sys.exit(run_local(Path.cwd(), port=args.port, data_dir=args.data_dir.absolute()))
    if args.command == "token":
        sys.exit(run_token(args))
    if args.command == "contract":
        for path in write_contract(args.docs):
            print(path)
