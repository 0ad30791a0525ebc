"""Who is calling, and what they may see: signed, expiring bearer tokens (JWT, HS256).

An **office** token names one district office (``district_code``); the office
may submit for, read and cancel that district's requests only. An **operator**
token names a communication-centre region (``region``, resolved through
:data:`vcs_shared.offices.REGION_PROVINCES` when the token is verified, so a
corrected mapping applies at once) and/or an explicit ``provinces`` list; the
operator may act for every office in those provinces, and only there.

This module knows no web framework: :mod:`vcs_shared.http_auth` turns it into
FastAPI dependencies. Revocation is a :class:`RevocationList` the service
supplies (the intake keeps it in its store), so verification stays pure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, Self

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vcs_shared.offices import REGION_PROVINCES, find_office, is_province

ISSUER = "dopa-vcs"
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
CLOCK_SKEW = timedelta(seconds=10)


class Role(StrEnum):
    office = "office"
    operator = "operator"


class InvalidToken(Exception):
    """The token is missing, malformed, tampered with, expired, revoked or names nobody."""


class TokenClaims(BaseModel):
    """The claims of a VCS token; validated after the signature, so a signed but
    senseless token (an office that does not exist, an operator of nowhere) is refused too."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    iss: str = ISSUER
    sub: str = Field(min_length=1, max_length=200)
    role: Role
    district_code: str | None = None
    region: str | None = None
    provinces: tuple[str, ...] = ()
    iat: int
    exp: int
    jti: str = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_kind_of_identity(self) -> Self:
        if self.role is Role.office:
            if self.region is not None or self.provinces:
                raise ValueError("an office token carries no region or provinces")
            if self.district_code is None or find_office(self.district_code) is None:
                raise ValueError("an office token needs a known district_code")
        else:
            if self.district_code is not None:
                raise ValueError("an operator token carries no district_code")
            if self.region is None and not self.provinces:
                raise ValueError("an operator token needs a region or provinces")
            if self.region is not None and self.region not in REGION_PROVINCES:
                raise ValueError(f"unknown region {self.region!r}")
            unknown = [p for p in self.provinces if not is_province(p)]
            if unknown:
                raise ValueError(f"unknown provinces {unknown}")
        if self.exp <= self.iat:
            raise ValueError("exp must be after iat")
        return self

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, UTC)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, as the routes see it."""

    subject: str
    role: Role
    jti: str
    expires_at: datetime
    district_code: str | None = None
    region: str | None = None
    provinces: frozenset[str] = frozenset()

    @classmethod
    def from_claims(cls, claims: TokenClaims) -> Principal:
        provinces = set(claims.provinces)
        if claims.region is not None:
            provinces |= REGION_PROVINCES[claims.region]
        return cls(
            subject=claims.sub,
            role=claims.role,
            jti=claims.jti,
            expires_at=claims.expires_at,
            district_code=claims.district_code,
            region=claims.region,
            provinces=frozenset(provinces),
        )

    @property
    def is_operator(self) -> bool:
        return self.role is Role.operator

    def may_act_for(self, district_code: str, province_code: str) -> bool:
        """Whether this caller may submit, read or cancel for that office.

        An office: its own district only. An operator: any office of its provinces.
        """
        if self.role is Role.office:
            return self.district_code == district_code
        return province_code in self.provinces


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class TokenCodec:
    """Issues and verifies tokens with one HMAC secret (at least 32 bytes, from settings)."""

    def __init__(self, secret: str) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def issue_office(
        self, district_code: str, *, ttl: timedelta, now: datetime | None = None
    ) -> IssuedToken:
        return self._issue(
            sub=f"office:{district_code}",
            role=Role.office,
            extra={"district_code": district_code},
            ttl=ttl,
            now=now,
        )

    def issue_operator(
        self,
        name: str,
        *,
        ttl: timedelta,
        region: str | None = None,
        provinces: tuple[str, ...] = (),
        now: datetime | None = None,
    ) -> IssuedToken:
        extra: dict[str, object] = {"provinces": tuple(sorted(set(provinces)))}
        if region is not None:
            extra["region"] = region
        return self._issue(
            sub=f"operator:{name}", role=Role.operator, extra=extra, ttl=ttl, now=now
        )

    def _issue(
        self,
        *,
        sub: str,
        role: Role,
        extra: dict[str, object],
        ttl: timedelta,
        now: datetime | None,
    ) -> IssuedToken:
        issued = now or datetime.now(UTC)
        try:
            claims = TokenClaims.model_validate(
                {
                    "sub": sub,
                    "role": role,
                    "iat": int(issued.timestamp()),
                    "exp": int((issued + ttl).timestamp()),
                    "jti": uuid.uuid4().hex,
                    **extra,
                }
            )
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from exc
        payload = claims.model_dump(mode="json", exclude_none=True)
        if not claims.provinces:
            del payload["provinces"]
        return IssuedToken(jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims)

    def claims(self, token: str, *, allow_expired: bool = False) -> TokenClaims:
        """The verified claims; ``allow_expired`` is for revoking a token that may have run out."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                leeway=CLOCK_SKEW,
                options={
                    "require": ["exp", "iat", "sub", "jti", "iss"],
                    "verify_exp": not allow_expired,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("the token is not valid") from exc
        try:
            return TokenClaims.model_validate(payload)
        except ValidationError as exc:
            raise InvalidToken(f"the token names no valid identity: {_first_error(exc)}") from exc

    def verify(self, token: str) -> Principal:
        """The caller a valid, unexpired token names; raises :class:`InvalidToken` otherwise."""
        return Principal.from_claims(self.claims(token))


class RevocationList(Protocol):
    """Where revoked token ids are kept (the intake: its ``revoked_tokens`` collection)."""

    async def is_revoked(self, jti: str) -> bool: ...


class Authenticator:
    """Verification plus the revocation check: what an HTTP layer calls for each request."""

    def __init__(self, codec: TokenCodec, revocations: RevocationList | None) -> None:
        self._codec = codec
        self._revocations = revocations

    async def authenticate(self, token: str) -> Principal:
        principal = self._codec.verify(token)
        if self._revocations is not None and await self._revocations.is_revoked(principal.jti):
            raise InvalidToken("the token has been revoked")
        return principal


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return str(error["msg"]).removeprefix("Value error, ")
