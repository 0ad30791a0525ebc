"""``vcs user``: invite the people who sign in to the pages.

``vcs user add --email E --name N (--office 4701 | --operator --region 12 |
--operator --province 47 | --operator --national)`` stores the person in the
intake's store and prints, as its last line, a one-time invite link valid for
72 hours (``INVITE=$(vcs user add ...)`` works). ``vcs user invite --email E``
prints a fresh link for someone already added (a lost link, a forgotten password).

Like ``vcs token``, it reads ``.data/dev.env`` and ``.data/run.env`` when the
settings are not exported, so it works right after ``make run``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from vcs_intake.people.accounts import Accounts
from vcs_intake.people.audit import AuditedInvitations, AuditedSignIns
from vcs_intake.people.model import INVITE_LIFETIME, Person, normalise_email
from vcs_intake.people.store import EmailTaken, MongoPeopleStore
from vcs_shared.audit import Actor
from vcs_shared.audit_trail import AuditTrail
from vcs_shared.offices import REGION_PROVINCES
from vcs_shared.settings import NamespaceSettings
from vcs_shared.store import database_name, make_client
from vcs_tools.token import LOCAL_ENV_FILES, settings_problem


class UserToolSettings(NamespaceSettings):
    """What ``vcs user`` needs: the intake's store, and the address people open."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore", env_file=LOCAL_ENV_FILES)

    mongodb_url: SecretStr = Field(description="The intake's store, where people are kept")
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Where people reach the intake"
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser(
        "user",
        help="invite people who sign in to the pages",
        description="Needs VCS_MONGODB_URL (beside `make run`: read from .data/run.env) and "
        "VCS_PUBLIC_URL for the link (default http://127.0.0.1:8000).",
    )
    actions = user.add_subparsers(dest="user_command", required=True)
    add = actions.add_parser("add", help="add a person; the invite link is the last line")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--phone", help="pre-fills the contact phone of the request form")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--office", metavar="DISTRICT_CODE", help="a district office, e.g. 4701")
    who.add_argument("--operator", action="store_true", help="an operator of a regional centre")
    add.add_argument("--region", choices=sorted(REGION_PROVINCES), help="the operator's region")
    add.add_argument("--province", action="append", default=[], metavar="CODE", help="repeatable")
    add.add_argument("--national", action="store_true", help="an operator of every province")
    invite = actions.add_parser("invite", help="a fresh invite link for a person already added")
    invite.add_argument("--email", required=True)


def run(args: argparse.Namespace) -> int:
    try:
        settings = UserToolSettings()
    except ValidationError as exc:
        print(
            f"vcs user: settings missing or invalid ({settings_problem(exc)}). Run `make run` "
            "here (it writes .data/run.env), or export VCS_MONGODB_URL.",
            file=sys.stderr,
        )
        return 2
    person = None
    if args.user_command == "add":
        if args.office is not None and (args.region or args.province or args.national):
            print("vcs user add: --region/--province/--national are for operators", file=sys.stderr)
            return 2
        try:
            person = Person.new(
                email=args.email,
                name=args.name,
                phone=args.phone,
                district_code=args.office,
                region=args.region,
                provinces=tuple(args.province),
                national=args.national,
            )
        except ValueError as exc:
            print(f"vcs user add: {exc}", file=sys.stderr)
            return 2
    return asyncio.run(_run(args, settings, person))


async def _run(args: argparse.Namespace, settings: UserToolSettings, person: Person | None) -> int:
    assert settings.mongodb_url is not None
    client = make_client(settings.mongodb_url.get_secret_value(), app_name="vcs-user")
    try:
        database = client[database_name(settings.namespace, "intake")]
        store = MongoPeopleStore(database)
        await store.ensure_indexes()
        # the intake's relay publishes these entries (this command does not publish)
        trail = AuditTrail(database, source="vcs-user")
        command_line = Actor.command_line(getpass.getuser(), "vcs user")
        accounts = Accounts(
            store,
            audit=AuditedSignIns(trail),
            invite_audit=AuditedInvitations(trail, command_line=command_line),
        )
        if person is not None:
            try:
                token = await accounts.invite(person)
            except EmailTaken:
                print(
                    f"vcs user add: {person.email} already has an account; "
                    f"`vcs user invite --email {person.email}` sends a new link",
                    file=sys.stderr,
                )
                return 2
        else:
            account = await store.by_email(normalise_email(args.email))
            if account is None:
                print(f"vcs user invite: nobody has the address {args.email}", file=sys.stderr)
                return 1
            person = account.person
            token = await accounts.invite_again(person)
    finally:
        await client.close()
    hours = int(INVITE_LIFETIME.total_seconds() // 3600)
    print(
        f"invite for {person.name} <{person.email}> ({person.scope_label()}), "
        f"valid {hours} hours, once:",
        file=sys.stderr,
        flush=True,
    )
    print(f"{settings.public_url.rstrip('/')}/invite/{token}", flush=True)
    return 0
