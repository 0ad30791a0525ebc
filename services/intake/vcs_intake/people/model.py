"""Who a person is and what they may see; the password and lockout rules. No I/O here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from vcs_shared.auth import Principal, Role
from vcs_shared.offices import ALL_PROVINCES, REGION_PROVINCES, find_office, is_province

INVITE_LIFETIME = timedelta(hours=72)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Person:
    """An office clerk (one district) or an operator (a region, listed provinces, or national).

    The scope is the same as a token's, so one set of rules serves both: :meth:`principal`
    is what the routes see, whether the caller signed in or sent a bearer token.
    """

    person_id: str
    email: str
    name: str
    role: Role
    district_code: str | None = None
    region: str | None = None
    provinces: frozenset[str] = frozenset()
    national: bool = False
    phone: str | None = None

    @classmethod
    def new(
        cls,
        *,
        email: str,
        name: str,
        district_code: str | None = None,
        region: str | None = None,
        provinces: tuple[str, ...] = (),
        national: bool = False,
        phone: str | None = None,
    ) -> Person:
        """A new person; ``ValueError`` names what is wrong with the scope."""
        if not name.strip():
            raise ValueError("the name must not be blank")
        if district_code is not None:
            if region is not None or provinces or national:
                raise ValueError("an office person has no region, provinces or national scope")
            if find_office(district_code) is None:
                raise ValueError(f"unknown district {district_code!r}")
            role = Role.office
        else:
            scopes = sum((region is not None, bool(provinces), national))
            if scopes != 1:
                raise ValueError("an operator needs one of: a region, provinces, national")
            if region is not None and region not in REGION_PROVINCES:
                raise ValueError(f"unknown region {region!r}")
            unknown = sorted(p for p in provinces if not is_province(p))
            if unknown:
                raise ValueError(f"unknown provinces {unknown}")
            role = Role.operator
        return cls(
            person_id=str(uuid.uuid4()),
            email=normalise_email(email),
            name=name.strip(),
            role=role,
            district_code=district_code,
            region=region,
            provinces=frozenset(provinces),
            national=national,
            phone=phone,
        )

    def principal(self, *, session_id: str, expires_at: datetime) -> Principal:
        """The caller this person is for the rest of the code: the same rules as a token's
        (:meth:`vcs_shared.auth.Principal.from_claims`)."""
        return Principal(
            subject=f"person:{self.person_id}",
            role=self.role,
            jti=session_id,
            expires_at=expires_at,
            district_code=self.district_code,
            region=self.region,
            provinces=self.operator_provinces(),
            national=self.national,
            name=self.name,
        )

    def operator_provinces(self) -> frozenset[str]:
        """An operator's provinces: its region's, its listed ones, or all 77 (none for an
        office, whose right is its district)."""
        provinces = set(ALL_PROVINCES if self.national else self.provinces)
        if self.region is not None:
            provinces |= REGION_PROVINCES[self.region]
        return frozenset(provinces)

    def scope_label(self) -> str:
        """``office 4701``, ``region 12``, ``provinces 47,48`` or ``national``: for the CLI."""
        if self.district_code is not None:
            return f"office {self.district_code}"
        if self.national:
            return "national"
        if self.region is not None:
            return f"region {self.region}"
        return f"provinces {','.join(sorted(self.provinces))}"


def invite_refusal(inviter: Principal, person: Person) -> str | None:
    """Why ``inviter`` may not invite ``person``, or None. An operator invites offices and
    operators within its own provinces only: an office of one of them, an operator all of
    whose provinces are among them; a national operator only a national one."""
    if not inviter.is_operator:
        return "only operators invite people"
    if inviter.national:
        return None
    if person.national:
        return "only a national operator may invite a national one"
    wanted = person.operator_provinces()
    if person.district_code is not None:
        office = find_office(person.district_code)
        wanted = frozenset({office.province_code if office else person.district_code})
    outside = sorted(wanted - inviter.provinces)
    if outside:
        return f"outside your provinces: {', '.join(outside)}"
    return None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def password_problem(password: str, confirmation: str, *, email: str) -> str | None:
    """Why this new password cannot be used (``differs``, ``too_short``, ``too_long``,
    ``is_email``), or None."""
    if password != confirmation:
        return "differs"
    if len(password) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if len(password) > MAX_PASSWORD_LENGTH:
        return "too_long"
    if password.strip().lower() == normalise_email(email):
        return "is_email"
    return None


@dataclass(frozen=True, slots=True)
class Lockout:
    """Repeated wrong passwords for one account are answered more and more slowly, then the
    account is locked for a while (a correct password is refused too until then)."""

    answered_at_once: int = 3
    lock_after: int = 6
    lock_for: timedelta = field(default=timedelta(minutes=15))
    longest_delay: float = 8.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before answering the ``failures``-th wrong password in a row."""
        if failures <= self.answered_at_once:
            return 0.0
        return float(min(2 ** (failures - self.answered_at_once - 1), self.longest_delay))

    def locks(self, failures: int) -> bool:
        return failures >= self.lock_after


@dataclass(frozen=True, slots=True)
class SignInAttempt:
    """What the audit log records about a sign-in (through :class:`SignInAudit`)."""

    email: str
    person: Person | None
    """The account the e-mail names, None for an unknown e-mail."""
    outcome: str  # "signed_in", "wrong_password", "unknown_email", "unverified_email", "locked"
    at: datetime
    client: str | None
    method: str = "password"
    """``password``, or ``oidc``: through the configured single sign-on provider."""


@dataclass(frozen=True, slots=True)
class Invitation:
    """What the audit log records about an invitation (who invited whom, with which rights)."""

    person: Person
    by: Principal | None
    """The operator who invited from the console; None for ``vcs user`` on the server."""
    at: datetime


class InviteAudit(Protocol):
    """Where every invitation goes: the audit log (:mod:`vcs_intake.people.audit`)."""

    async def record(self, invitation: Invitation) -> None: ...


class SignInAudit(Protocol):
    """Where every sign-in attempt goes: the audit log (:mod:`vcs_intake.people.audit`)."""

    async def record(self, attempt: SignInAttempt) -> None: ...
