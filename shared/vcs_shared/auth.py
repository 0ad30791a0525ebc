"""Who is calling, and what they may see: signed, expiring bearer tokens (JWT, HS256).

An **office** token names one district office (``district_code``); the office
may submit for, read and cancel that district's requests only. An **operator**
token names a communication-centre region (``region``, resolved through
:data:`vcs_shared.offices.REGION_PROVINCES` when the token is verified, so a
corrected mapping applies at once) and/or an explicit ``provinces`` list, or is
**national** (``national: true``, the department's headquarters: all 77
provinces); the operator may act for every office in those provinces, and only there.

Lifetimes are capped (:data:`LIFETIME_CAPS`): a token whose ``exp - iat`` is
longer than its role's cap is refused when issued and when verified, so a
leaked long-lived token cannot be minted by mistake and is not honoured if it was.

**Internal tokens** carry a caller from the intake (the one front door) to a
service's internal API: the intake checks the caller's own token (signature,
expiry, cap, revocation), then mints an internal token per forwarded call with
the same identity and scope, ``aud="vcs-internal"`` and a 60-second life
(:meth:`TokenCodec.internal_token`). Internal APIs accept nothing else
(:class:`InternalAuthenticator`), and the front door refuses internal tokens,
so a revoked token stops working everywhere within a minute.

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

from vcs_shared.offices import ALL_PROVINCES, REGION_PROVINCES, find_office, is_province

ISSUER = "dopa-vcs"
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
CLOCK_SKEW = timedelta(seconds=10)
INTERNAL_AUDIENCE = "vcs-internal"
INTERNAL_TOKEN_TTL = timedelta(seconds=60)


class Role(StrEnum):
    office = "office"
    operator = "operator"


LIFETIME_CAPS: dict[Role, timedelta] = {
    Role.office: timedelta(days=90),
    Role.operator: timedelta(hours=12),
}
"""The longest life a token of each role may have (``exp - iat``)."""


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
    national: bool = False
    aud: str | None = None
    """Only internal tokens have an audience (:data:`INTERNAL_AUDIENCE`)."""
    name: str | None = Field(default=None, max_length=200)
    """A signed-in person's name, carried by internal tokens so owners can say who acted."""
    iat: int
    exp: int
    jti: str = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_kind_of_identity(self) -> Self:
        if self.role is Role.office:
            if self.region is not None or self.provinces or self.national:
                raise ValueError("an office token carries no region, provinces or national role")
            if self.district_code is None or find_office(self.district_code) is None:
                raise ValueError("an office token needs a known district_code")
        else:
            if self.district_code is not None:
                raise ValueError("an operator token carries no district_code")
            if self.national and (self.region is not None or self.provinces):
                raise ValueError("a national operator token lists no region or provinces")
            if not self.national and self.region is None and not self.provinces:
                raise ValueError("an operator token needs a region, provinces or the national role")
            if self.region is not None and self.region not in REGION_PROVINCES:
                raise ValueError(f"unknown region {self.region!r}")
            unknown = [p for p in self.provinces if not is_province(p)]
            if unknown:
                raise ValueError(f"unknown provinces {unknown}")
        if self.exp <= self.iat:
            raise ValueError("exp must be after iat")
        lifetime, cap = timedelta(seconds=self.exp - self.iat), self.lifetime_cap
        if lifetime > cap:
            raise ValueError(
                f"the lifetime of {_duration(lifetime)} is over the cap of {_duration(cap)} "
                f"for {'internal' if self.is_internal else self.role.value} tokens"
            )
        return self

    @property
    def is_internal(self) -> bool:
        return self.aud == INTERNAL_AUDIENCE

    @property
    def lifetime_cap(self) -> timedelta:
        return INTERNAL_TOKEN_TTL if self.is_internal else LIFETIME_CAPS[self.role]

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
    """Every province an operator may act in (its region's, its listed ones, or all 77)."""
    national: bool = False
    name: str | None = None
    """A signed-in person's name (tokens carry none; the audit log shows the subject then)."""

    @classmethod
    def from_claims(cls, claims: TokenClaims) -> Principal:
        provinces = set(ALL_PROVINCES if claims.national else claims.provinces)
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
            national=claims.national,
            name=claims.name,
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
        national: bool = False,
        now: datetime | None = None,
    ) -> IssuedToken:
        extra: dict[str, object] = {"provinces": tuple(sorted(set(provinces)))}
        if region is not None:
            extra["region"] = region
        if national:
            extra["national"] = True
        return self._issue(
            sub=f"operator:{name}", role=Role.operator, extra=extra, ttl=ttl, now=now
        )

    def internal_token(self, principal: Principal, *, now: datetime | None = None) -> str:
        """The token the intake attaches to a call it forwards for ``principal``: the same
        identity and scope, ``aud="vcs-internal"``, valid for 60 seconds.

        Mint one per forwarded call, only after the caller's own token passed every
        check (revocation included): the internal API trusts it without asking the intake.
        """
        extra: dict[str, object] = {"aud": INTERNAL_AUDIENCE}
        if principal.name:
            extra["name"] = principal.name
        if principal.role is Role.office:
            extra["district_code"] = principal.district_code
        elif principal.national:
            extra["national"] = True
        else:
            extra["provinces"] = tuple(sorted(principal.provinces))
            if principal.region is not None:
                extra["region"] = principal.region
        return self._issue(
            sub=principal.subject,
            role=principal.role,
            extra=extra,
            ttl=INTERNAL_TOKEN_TTL,
            now=now,
        ).token

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
        if not claims.national:
            del payload["national"]
        return IssuedToken(jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims)

    def claims(
        self, token: str, *, allow_expired: bool = False, audience: str | None = None
    ) -> TokenClaims:
        """The verified claims; ``allow_expired`` is for revoking a token that may have run out.

        Without ``audience`` only tokens without one pass (people's and machines' tokens);
        with it, only tokens for that audience.
        """
        required = ["exp", "iat", "sub", "jti", "iss", *(["aud"] if audience else [])]
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                audience=audience,
                leeway=CLOCK_SKEW,
                options={"require": required, "verify_exp": not allow_expired},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            if audience is None:
                raise InvalidToken("an internal token is not accepted here") from exc
            raise InvalidToken("only internal tokens minted by the intake are accepted") from exc
        except jwt.MissingRequiredClaimError as exc:
            if exc.claim == "aud":
                raise InvalidToken(
                    "only internal tokens minted by the intake are accepted"
                ) from exc
            raise InvalidToken("the token is not valid") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("the token is not valid") from exc
        try:
            return TokenClaims.model_validate(payload)
        except ValidationError as exc:
            raise InvalidToken(f"the token names no valid identity: {_first_error(exc)}") from exc

    def verify(self, token: str) -> Principal:
        """The caller a valid, unexpired token names; raises :class:`InvalidToken` otherwise."""
        return Principal.from_claims(self.claims(token))

    def verify_internal(self, token: str) -> Principal:
        """The caller an internal token (minted by the intake) carries; nothing else passes."""
        return Principal.from_claims(self.claims(token, audience=INTERNAL_AUDIENCE))


class RevocationList(Protocol):
    """Where revoked token ids are kept (the intake: its ``revoked_tokens`` collection)."""

    async def is_revoked(self, jti: str) -> bool: ...


class Authenticator(Protocol):
    """What an HTTP layer calls for each request: a bearer token in, the caller out."""

    async def authenticate(self, token: str) -> Principal: ...


class TokenAuthenticator:
    """The front door's check of people's and machines' tokens: verification, lifetime cap
    and the revocation list. Internal tokens are refused here."""

    def __init__(self, codec: TokenCodec, revocations: RevocationList) -> None:
        self._codec = codec
        self._revocations = revocations

    async def authenticate(self, token: str) -> Principal:
        principal = self._codec.verify(token)
        if await self._revocations.is_revoked(principal.jti):
            raise InvalidToken("the token has been revoked")
        return principal


class InternalAuthenticator:
    """An internal API's check: only internal tokens, which the intake mints after its own
    checks; a caller's own token (no audience) is refused."""

    def __init__(self, codec: TokenCodec) -> None:
        self._codec = codec

    async def authenticate(self, token: str) -> Principal:
        return self._codec.verify_internal(token)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return str(error["msg"]).removeprefix("Value error, ")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours"
    return f"{seconds} seconds"
