"""What the pages and ``vcs user`` do with people: invite, set a password, sign in and out.

Passwords are hashed with Argon2id (argon2-cffi, the reference implementation's
binding, with its RFC 9106 defaults); hashing runs in a worker thread so that a
sign-in never stalls the event loop that serves everyone else.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from vcs_intake.people.model import (
    INVITE_LIFETIME,
    SESSION_LIFETIME,
    Invitation,
    InviteAudit,
    Lockout,
    Person,
    SignInAttempt,
    SignInAudit,
    normalise_email,
    password_problem,
)
from vcs_intake.people.store import MongoPeopleStore
from vcs_shared.auth import Principal

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A person with a live session, and the principal the routes check."""

    person: Person
    principal: Principal


@dataclass(frozen=True, slots=True)
class SignInResult:
    """A new session token, or why not (``wrong`` covers unknown e-mail and wrong password
    alike, so the page never tells who has an account)."""

    session_token: str | None = None
    locked_until: datetime | None = None
    refusal: str | None = None
    """Why a single sign-on was refused (``unverified_email``, ``unknown_email``, ``locked``):
    the provider already proved who signs in, so the page may say it."""

    @property
    def ok(self) -> bool:
        return self.session_token is not None


class InviteInvalid(Exception):
    """The invite link is unknown, used or expired."""


class PasswordRejected(ValueError):
    """The new password breaks a rule; ``problem`` says which (see ``password_problem``)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


class Accounts:
    def __init__(
        self,
        store: MongoPeopleStore,
        *,
        audit: SignInAudit,
        invite_audit: InviteAudit,
        lockout: Lockout | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.invite_audit = invite_audit
        self.lockout = lockout or Lockout()
        self.hasher = hasher or PasswordHasher()
        # Verified against when the e-mail is unknown, so both cases cost the same time.
        self._decoy_hash = decoy_hash(self.hasher)

    async def invite(self, person: Person, *, by: Principal | None = None) -> str:
        """Stores a new person and returns a one-time invite token (72 hours); the
        invitation is audited (``by``: the operator, or None for ``vcs user``)."""
        now = datetime.now(UTC)
        await self.store.add(person, now=now)
        token = await self.reinvite(person.person_id, now=now)
        await self.invite_audit.record(Invitation(person=person, by=by, at=now))
        return token

    async def invite_again(self, person: Person, *, by: Principal | None = None) -> str:
        """A fresh invite for someone already added (a lost link, a forgotten password),
        audited like the first one."""
        now = datetime.now(UTC)
        token = await self.reinvite(person.person_id, now=now)
        await self.invite_audit.record(Invitation(person=person, by=by, at=now))
        return token

    async def reinvite(self, person_id: str, *, now: datetime | None = None) -> str:
        """A fresh invite for an existing person (a lost link, a forgotten password)."""
        token = secrets.token_urlsafe(32)
        now = now or datetime.now(UTC)
        await self.store.add_invite(token, person_id, expires_at=now + INVITE_LIFETIME)
        return token

    async def invited(self, token: str) -> Person:
        """Whom a still valid invite is for; :class:`InviteInvalid` otherwise."""
        person_id = await self.store.open_invite(token, now=datetime.now(UTC))
        account = await self.store.by_id(person_id) if person_id else None
        if account is None:
            raise InviteInvalid
        return account.person

    async def accept_invite(self, token: str, password: str, confirmation: str) -> Person:
        """Sets the password and spends the invite (only once, even when sent twice at once)."""
        person = await self.invited(token)
        problem = password_problem(password, confirmation, email=person.email)
        if problem is not None:
            raise PasswordRejected(problem)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        if await self.store.use_invite(token, now=datetime.now(UTC)) is None:
            raise InviteInvalid
        await self.store.set_password(person.person_id, password_hash)
        return person

    async def sign_in(self, email: str, password: str, *, client: str | None) -> SignInResult:
        now = datetime.now(UTC)
        email = normalise_email(email)
        account = await self.store.by_email(email)
        if account is None or account.password_hash is None:
            await asyncio.to_thread(self._verify, self._decoy_hash, password)
            await self._record(email, None, "unknown_email", now, client)
            return SignInResult()
        person_id = account.person.person_id
        locked_until = account.locked_at(now)
        if locked_until is not None:
            await self._record(email, account.person, "locked", now, client)
            return SignInResult(locked_until=locked_until)
        if not await asyncio.to_thread(self._verify, account.password_hash, password):
            failures = await self.store.count_failure(person_id)
            await self._record(email, account.person, "wrong_password", now, client)
            await asyncio.sleep(self.lockout.delay(failures))  # slows guessing down
            if self.lockout.locks(failures):
                until = now + self.lockout.lock_for
                await self.store.lock(person_id, until=until)
                return SignInResult(locked_until=until)
            return SignInResult()
        if account.failed_signins:
            await self.store.clear_failures(person_id)
        if self.hasher.check_needs_rehash(account.password_hash):
            fresh = await asyncio.to_thread(self.hasher.hash, password)
            await self.store.set_password(person_id, fresh)
        token = await self._start_session(person_id, now)
        await self._record(email, account.person, "signed_in", now, client)
        return SignInResult(session_token=token)

    async def _start_session(self, person_id: str, now: datetime) -> str:
        token = secrets.token_urlsafe(32)
        await self.store.add_session(token, person_id, expires_at=now + SESSION_LIFETIME)
        return token

    async def sign_in_verified(
        self, email: str, *, email_verified: bool, client: str | None
    ) -> SignInResult:
        """A sign-in whose e-mail the single sign-on provider vouched for (no password): the
        account of that e-mail, with its own office or region, if the provider says the
        address is verified and the account is not locked. Audited like any sign-in."""
        now = datetime.now(UTC)
        email = normalise_email(email)
        account = await self.store.by_email(email) if email else None
        person = account.person if account is not None else None
        if not email_verified or account is None:
            refusal = "unverified_email" if not email_verified else "unknown_email"
            await self._record(email, person, refusal, now, client, "oidc")
            return SignInResult(refusal=refusal)
        locked_until = account.locked_at(now)
        if locked_until is not None:
            await self._record(email, person, "locked", now, client, "oidc")
            return SignInResult(locked_until=locked_until, refusal="locked")
        token = await self._start_session(account.person.person_id, now)
        await self._record(email, account.person, "signed_in", now, client, "oidc")
        return SignInResult(session_token=token)

    async def signed_in(self, session_token: str) -> SignedIn | None:
        """The person behind a session cookie, or None (unknown, expired or signed out)."""
        session = await self.store.session(session_token, now=datetime.now(UTC))
        account = await self.store.by_id(session.person_id) if session else None
        if session is None or account is None:
            return None
        person = account.person
        principal = person.principal(session_id=session.session_id, expires_at=session.expires_at)
        return SignedIn(person=person, principal=principal)

    async def sign_out(self, session_token: str) -> None:
        await self.store.end_session(session_token)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _record(
        self,
        email: str,
        person: Person | None,
        outcome: str,
        at: datetime,
        client: str | None,
        method: str = "password",
    ) -> None:
        attempt = SignInAttempt(
            email=email, person=person, outcome=outcome, at=at, client=client, method=method
        )
        await self.audit.record(attempt)


def decoy_hash(hasher: PasswordHasher) -> str:
    """A hash of no password in the hasher's own encoding and parameters (random salt and
    digest): verifying a password against it costs exactly what a real verification costs,
    and making it costs nothing. Hashing a random password instead ran Argon2 (64 MiB with
    the RFC 9106 defaults) when the intake started, its peak memory."""

    def random_b64(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode().rstrip("=")

    variant = f"argon2{hasher.type.name.lower()}"
    cost = f"m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
    return f"${variant}$v=19${cost}${random_b64(hasher.salt_len)}${random_b64(hasher.hash_len)}"
