"""``vcs token``: issue and revoke the bearer tokens of district offices and operators.

``vcs token issue --office 4701`` prints the token as the last line of stdout
(so ``TOKEN=$(vcs token issue --office 4701)`` works) and a one-line hint on
stderr. An operator covers ``--region``, ``--province`` (repeatable) or, for the
department's headquarters, ``--national`` (all 77 provinces). Lifetimes are
capped (offices 90 days, operators 12 hours): a longer ``--ttl-hours`` is
refused with the reason (exit 2). ``vcs token revoke JTI_OR_TOKEN`` writes the
token's id into the intake's revocation list; the intake refuses it from the
next request on, and so, within a minute, does every internal API behind it.

The signing secret is ``VCS_JWT_SECRET``; when it is not set, the secrets
``make run`` keeps in ``.data/dev.env`` are used, and ``.data/run.env`` gives
the running local store's URL, so both commands work beside ``make run``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime, timedelta

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from vcs_intake.revocations import MongoRevocationList
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.audit_trail import AuditTrail
from vcs_shared.auth import (
    LIFETIME_CAPS,
    InvalidToken,
    IssuedToken,
    Principal,
    Role,
    TokenClaims,
    TokenCodec,
)
from vcs_shared.offices import REGION_PROVINCES, find_office
from vcs_shared.settings import NamespaceSettings, TokenSettings
from vcs_shared.store import database_name, make_client
from vcs_shared.thaitime import BANGKOK

LOCAL_ENV_FILES = (".data/dev.env", ".data/run.env")


class TokenToolSettings(TokenSettings, NamespaceSettings):
    """What ``vcs token`` needs: the secret to sign with, the intake's store to revoke in."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore", env_file=LOCAL_ENV_FILES)

    mongodb_url: SecretStr | None = Field(
        default=None,
        description="The intake's store: revocations go there, and the audit log's entries",
    )
    operator_token_hours: float = Field(
        default=8,
        gt=0,
        le=LIFETIME_CAPS[Role.operator] / timedelta(hours=1),
        description="Lifetime of operator tokens: one shift (at most 12 hours)",
    )
    office_token_days: float = Field(
        default=30,
        gt=0,
        le=LIFETIME_CAPS[Role.office] / timedelta(days=1),
        description="Lifetime of office tokens (at most 90 days)",
    )


def add_token_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``vcs token issue|revoke`` on the ``vcs`` command line."""
    token = commands.add_parser("token", help="issue or revoke office and operator tokens")
    actions = token.add_subparsers(dest="token_command", required=True)

    issue = actions.add_parser("issue", help="print a new token as the last line of stdout")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--office", metavar="DISTRICT_CODE", help="a district office, e.g. 4701")
    who.add_argument("--operator", metavar="NAME", help="an operator of a regional centre")
    issue.add_argument(
        "--region", choices=sorted(REGION_PROVINCES), help="the operator's region, e.g. 12"
    )
    issue.add_argument(
        "--province",
        action="append",
        default=[],
        metavar="CODE",
        help="a province the operator covers (repeatable; with or instead of --region)",
    )
    issue.add_argument(
        "--national",
        action="store_true",
        help="an operator of the department's headquarters: all 77 provinces",
    )
    issue.add_argument(
        "--ttl-hours",
        type=float,
        help=(
            "lifetime; default VCS_OPERATOR_TOKEN_HOURS (8) or VCS_OFFICE_TOKEN_DAYS (30); "
            "at most 12 hours for operators, 90 days for offices"
        ),
    )

    revoke = actions.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("token_or_jti", metavar="JTI_OR_TOKEN")


def run_token(args: argparse.Namespace) -> int:
    """Runs ``vcs token ...``; returns the exit code."""
    try:
        settings = TokenToolSettings()
    except ValidationError as exc:
        print(
            f"vcs token: settings are incomplete ({settings_problem(exc)}). Export VCS_JWT_SECRET, "
            "or run `make run` once here so that .data/dev.env holds the local secret.",
            file=sys.stderr,
        )
        return 2
    codec = TokenCodec(settings.jwt_secret.get_secret_value())
    if args.token_command == "issue":
        return _issue(args, settings, codec)
    return _revoke(args.token_or_jti, settings, codec)


def _issue(args: argparse.Namespace, settings: TokenToolSettings, codec: TokenCodec) -> int:
    try:
        if args.office is not None:
            if args.region or args.province or args.national:
                raise ValueError("--region, --province and --national are for operators")
            ttl = timedelta(hours=args.ttl_hours or settings.office_token_days * 24)
            issued = codec.issue_office(args.office, ttl=ttl)
        else:
            if args.national and (args.region or args.province):
                raise ValueError("--national covers every province: no --region or --province")
            if not (args.region or args.province or args.national):
                raise ValueError("an operator needs --region, --province or --national")
            ttl = timedelta(hours=args.ttl_hours or settings.operator_token_hours)
            issued = codec.issue_operator(
                args.operator,
                region=args.region,
                provinces=tuple(args.province),
                national=args.national,
                ttl=ttl,
            )
    except ValueError as exc:
        print(f"vcs token issue: {exc}", file=sys.stderr)
        return 2
    print(_hint(issued), file=sys.stderr, flush=True)
    _audit(settings, issue_entry(issued.claims))
    print(issued.token, flush=True)
    return 0


def _provinces(claims: TokenClaims) -> tuple[str, ...]:
    """What an entry about this token concerns: its office's province or its operator's
    provinces (none for a national token: the national role's entry)."""
    if claims.district_code is not None:
        office = find_office(claims.district_code)
        return (office.province_code,) if office else ()
    return () if claims.national else tuple(sorted(Principal.from_claims(claims).provinces))


def _actor(command: str) -> Actor:
    return Actor.command_line(getpass.getuser(), command)


def issue_entry(claims: TokenClaims) -> AuditRecorded:
    expires = claims.expires_at.astimezone(BANGKOK).strftime("%Y-%m-%d %H:%M %z")
    return AuditRecorded(
        actor=_actor("vcs token issue"),
        action=AuditAction.token_issue,
        target=Target(kind="token", id=claims.jti),
        provinces=_provinces(claims),
        after=f"{claims.sub}, expires {expires}",
        at=datetime.now(UTC),
    )


def _audit(settings: TokenToolSettings, entry: AuditRecorded) -> None:
    """Writes the entry into the intake's audit trail (its relay publishes it). Without a
    store to write to, says so: whoever holds the secret can mint tokens unaudited anyway,
    so the command does not refuse."""
    if settings.mongodb_url is None:
        print(
            f"vcs token: not recorded in the audit log ({entry.action.value}): "
            "VCS_MONGODB_URL is not set",
            file=sys.stderr,
        )
        return

    async def record() -> None:
        assert settings.mongodb_url is not None
        client = make_client(settings.mongodb_url.get_secret_value(), app_name="vcs-token")
        try:
            trail = AuditTrail(
                client[database_name(settings.namespace, "intake")], source="vcs-token"
            )
            await trail.record(entry)
        finally:
            await client.close()

    asyncio.run(record())


def _hint(issued: IssuedToken) -> str:
    claims = issued.claims
    if claims.district_code is not None:
        office = find_office(claims.district_code)
        who = f"office {claims.district_code} ({office.name_en if office else '?'})"
    else:
        scope = ["national: all provinces"] if claims.national else []
        scope += [f"region {claims.region}"] if claims.region else []
        scope += [f"provinces {','.join(claims.provinces)}"] if claims.provinces else []
        who = f"{claims.sub} ({'; '.join(scope)})"
    expires = claims.expires_at.astimezone(BANGKOK).strftime("%Y-%m-%d %H:%M %z")
    return (
        f"token for {who}, expires {expires}, jti {claims.jti}; "
        'send it as "Authorization: Bearer <token>"'
    )


def _revoke(token_or_jti: str, settings: TokenToolSettings, codec: TokenCodec) -> int:
    subject: str | None = None
    expires_at = None
    claims: TokenClaims | None = None
    jti = token_or_jti.strip()
    if "." in jti:
        try:
            claims = codec.claims(jti, allow_expired=True)
        except InvalidToken as exc:
            print(f"vcs token revoke: {exc}; pass its jti instead", file=sys.stderr)
            return 1
        jti, subject, expires_at = claims.jti, claims.sub, claims.expires_at
    if settings.mongodb_url is None:
        print(
            "vcs token revoke: VCS_MONGODB_URL is not set (beside `make run`, .data/run.env "
            "holds it while the system runs)",
            file=sys.stderr,
        )
        return 2

    async def revoke() -> bool:
        assert settings.mongodb_url is not None
        client = make_client(settings.mongodb_url.get_secret_value(), app_name="vcs-token")
        try:
            revocations = MongoRevocationList(client[database_name(settings.namespace, "intake")])
            await revocations.ensure_indexes()
            return await revocations.revoke(
                jti, expires_at=expires_at, subject=subject, by=getpass.getuser()
            )
        finally:
            await client.close()

    fresh = asyncio.run(revoke())
    if fresh:
        _audit(
            settings,
            AuditRecorded(
                actor=_actor("vcs token revoke"),
                action=AuditAction.token_revoke,
                target=Target(kind="token", id=jti),
                provinces=_provinces(claims) if claims is not None else (),
                before=f"{subject or 'a token'}, valid",
                after="revoked",
                at=datetime.now(UTC),
            ),
        )
    print(
        f"{'revoked' if fresh else 'already revoked'}: jti {jti}"
        + (f" ({subject})" if subject else "")
    )
    return 0


def settings_problem(exc: ValidationError) -> str:
    return ", ".join(
        f"VCS_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    )
