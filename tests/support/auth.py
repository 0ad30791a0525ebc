"""Tokens for tests, signed with the session's test secret (the services get it as VCS_JWT_SECRET).

The ``http`` fixture authenticates as :func:`national_operator_token`, an
operator of the national role, so tests about something else need not care
about identities.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Generator
from datetime import UTC, datetime, timedelta

import httpx

from vcs_shared.auth import TokenCodec

TEST_JWT_SECRET = secrets.token_urlsafe(48)
TTL = timedelta(hours=1)

codec = TokenCodec(TEST_JWT_SECRET)


def office_token(district_code: str = "4701") -> str:
    return codec.issue_office(district_code, ttl=TTL).token


def operator_token(
    name: str = "operator", *, region: str | None = "12", provinces: tuple[str, ...] = ()
) -> str:
    return codec.issue_operator(name, region=region, provinces=provinces, ttl=TTL).token


def national_operator_token() -> str:
    """An operator of the national role (all 77 provinces, every pool)."""
    return codec.issue_operator("national-test-operator", national=True, ttl=TTL).token


def expired_token(district_code: str = "4701") -> str:
    """Correctly signed, but it ran out an hour ago."""
    issued = datetime.now(UTC) - timedelta(hours=2)
    return codec.issue_office(district_code, ttl=TTL, now=issued).token


def tampered_token(district_code: str = "4701", *, claim_district: str = "4702") -> str:
    """A real office token whose payload was edited to name another district; the signature
    is the original one."""
    header, payload, signature = office_token(district_code).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["district_code"] = claim_district
    claims["sub"] = f"office:{claim_district}"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def foreign_token(district_code: str = "4701") -> str:
    """A well-formed token signed with some other secret."""
    return TokenCodec(secrets.token_urlsafe(48)).issue_office(district_code, ttl=TTL).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class BearerAuth(httpx.Auth):
    """httpx authentication that sends one bearer token with every request that does not
    name its own ``Authorization`` (a test acting as someone else sets the header)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.setdefault("Authorization", f"Bearer {self.token}")
        yield request
