"""``vcs dlq list|replay``: operators look at the dead-letter queues and replay after a fix.

    vcs dlq list [--service allocator|notifier|intake] [--json]
    vcs dlq replay [--service S] (--id MESSAGE_ID | --all) [--include-poison]

Both call the operators' API on the intake's address (:mod:`vcs_tools.operator_api`),
which the desk serves: the dead letters of the caller's provinces only. Without
``--service`` every service's DLQ is listed (or searched, for a replay). A replay
goes back to the one service's queue with its original routing key; poison (not
JSON, not a CloudEvent, off its schema) is left where it is unless
``--include-poison`` says otherwise. Every letter and every replay is printed
on one line, once.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx

from vcs_shared.topology import CONSUMERS
from vcs_tools.operator_api import SETTINGS_HELP, CommandFailed, detail, operator_api

SERVICES = tuple(CONSUMERS)
LIST_LIMIT = 1000


def add_parser(commands: Any) -> None:
    """Registers ``dlq`` on the ``vcs`` command's subparsers."""
    dlq = commands.add_parser(
        "dlq", help="list or replay dead-lettered messages", description=SETTINGS_HELP
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser(
        "list", help="show the dead letters (the queue is unchanged)", description=SETTINGS_HELP
    )
    listing.add_argument("--service", choices=SERVICES, help="one service (default: all)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = actions.add_parser(
        "replay",
        help="put dead letters back into their service's queue, then drop them",
        description=SETTINGS_HELP,
    )
    replay.add_argument("--service", choices=SERVICES, help="one service (default: all)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="message_id", help="the message id to replay")
    which.add_argument("--all", action="store_true", help="replay every dead letter")
    replay.add_argument(
        "--include-poison",
        action="store_true",
        help="replay poison too (unparseable or off-schema: it will only die again)",
    )


def run(args: argparse.Namespace) -> int:
    """Runs ``vcs dlq ...``; 1 when a replay replayed nothing, 2 when the system could not
    be asked (settings, connection)."""
    try:
        if args.dlq_command == "list":
            return _list(args.service, as_json=args.json)
        return _replay(args.service, args.message_id, include_poison=args.include_poison)
    except CommandFailed as exc:
        print(f"vcs dlq {args.dlq_command}: {exc}")
        return exc.code


def _list(service: str | None, *, as_json: bool) -> int:
    params = {"limit": str(LIST_LIMIT), **({"service": service} if service else {})}
    with operator_api() as api:
        response = api.request("GET", "/v1/admin/dead-letters", params=params)
    if response.status_code != httpx.codes.OK:
        print(f"vcs dlq list: {detail(response)}")
        return 1
    letters: list[dict[str, Any]] = response.json()
    for letter in letters:
        print(_render(letter, as_json=as_json))
    if not letters and not as_json:
        print(f"no dead letters ({service or ', '.join(SERVICES)})")
    return 0


def _replay(service: str | None, message_id: str | None, *, include_poison: bool) -> int:
    command: dict[str, Any] = {"include_poison": include_poison}
    command.update({"message_id": message_id} if message_id else {"all": True})
    if service:
        command["service"] = service
    with operator_api() as api:
        response = api.request("POST", "/v1/admin/dead-letters/replay", json=command)
    if response.status_code != httpx.codes.OK:
        print(f"nothing replayed: {detail(response)}")
        return 1
    replayed = 0
    for outcome in response.json():
        for replayed_id in outcome["replayed"]:
            print(f"replayed {outcome['service']} {replayed_id}")
            replayed += 1
        for poison_id in outcome["skipped_poison"]:
            print(f"left poison {outcome['service']} {poison_id} (--include-poison replays it)")
    if replayed == 0:
        print("nothing replayed")
        return 1
    return 0


def _render(letter: dict[str, Any], *, as_json: bool) -> str:
    if as_json:
        return json.dumps(letter, ensure_ascii=False)
    deaths = "; ".join(
        f"{d.get('reason')} x{d.get('count')} from {d.get('queue')} at {d.get('time')}"
        for d in letter["deaths"]
    )
    return (
        f"{letter['service']}\t{letter['message_id']}\t{letter['event_type'] or '-'}\t"
        f"{letter['routing_key']}\t{'poison' if letter['poison'] else '-'}\t"
        f"reason={letter['reason'] or '-'}\tx-death={deaths or '-'}"
    )
