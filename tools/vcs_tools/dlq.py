"""``vcs dlq list|replay``: operators look at the dead-letter queues and replay after a fix.

    vcs dlq list [--service allocator|notifier|intake] [--json]
    vcs dlq replay [--service S] (--id MESSAGE_ID | --all)

Without ``--service`` every service's DLQ is listed (or searched, for a
replay). The broker work is in :mod:`vcs_shared.deadletters`, shared with the
intake's admin endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import aio_pika
from pydantic import Field, SecretStr, ValidationError

from vcs_shared.broker import Topology
from vcs_shared.deadletters import SERVICES, DeadLetter, DeadLetters
from vcs_shared.settings import NamespaceSettings


class DlqSettings(NamespaceSettings):
    """Where the broker is; the same ``VCS_`` variables the services read."""

    amqp_url: SecretStr = Field(description="AMQP URL of a user allowed to read and publish")


def add_parser(commands: Any) -> None:
    """Registers ``dlq`` on the ``vcs`` command's subparsers."""
    dlq = commands.add_parser("dlq", help="list or replay dead-lettered messages")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser("list", help="show the dead letters (the queue is unchanged)")
    listing.add_argument("--service", choices=SERVICES, help="one service (default: all)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = actions.add_parser("replay", help="republish to the service's queue, then drop")
    replay.add_argument("--service", choices=SERVICES, help="one service (default: all)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="message_id", help="the message id to replay")
    which.add_argument("--all", action="store_true", help="replay every dead letter")


def run(args: argparse.Namespace) -> int:
    """Runs ``vcs dlq ...``; the exit status is 1 when a replay found nothing to replay."""
    try:
        settings = DlqSettings()
    except ValidationError as exc:
        print(f"vcs dlq: settings missing or invalid (VCS_AMQP_URL, VCS_NAMESPACE):\n{exc}")
        return 2
    try:
        return asyncio.run(_run(args, settings))
    except aio_pika.exceptions.ChannelNotFoundEntity as exc:
        print(f"vcs dlq: {exc} (is VCS_NAMESPACE={settings.namespace} right?)")
    except (aio_pika.exceptions.AMQPConnectionError, ConnectionError) as exc:
        print(f"vcs dlq: cannot reach the broker: {exc}")
    return 2


async def _run(args: argparse.Namespace, settings: DlqSettings) -> int:
    services = (args.service,) if args.service else SERVICES
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    try:
        letters = DeadLetters(connection, Topology(settings.namespace))
        if args.dlq_command == "list":
            found = 0
            for service in services:
                for letter in await letters.peek(service):
                    print(_render(letter, as_json=args.json))
                    found += 1
            if not found and not args.json:
                print(f"no dead letters ({settings.namespace}: {', '.join(services)})")
            return 0
        replayed = 0
        for service in services:
            result = await letters.replay(service, None if args.all else args.message_id)
            for message_id in result.replayed:
                print(f"replayed {service} {message_id}")
            replayed += len(result.replayed)
        if replayed == 0:
            print("nothing replayed: no such dead letter")
            return 1
        return 0
    finally:
        await connection.close()


def _render(letter: DeadLetter, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(letter.as_dict(), ensure_ascii=False, default=str)
    deaths = "; ".join(
        f"{d.get('reason')} x{d.get('count')} from {d.get('queue')} at {d.get('time')}"
        for d in letter.deaths
    )
    return (
        f"{letter.service}\t{letter.message_id}\t{letter.event_type or '-'}\t"
        f"{letter.routing_key}\treason={letter.reason or '-'}\tx-death={deaths or '-'}"
    )
