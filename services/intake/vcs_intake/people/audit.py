"""What the intake records in the audit log about people: sign-ins and invitations.

These implement the hooks :class:`~vcs_intake.people.model.SignInAudit` and
:class:`~vcs_intake.people.model.InviteAudit`: each attempt or invitation becomes one
``audit.recorded`` entry in the intake's audit trail (:mod:`vcs_shared.audit_trail`), which
the desk appends to the operators' audit log. A log line is kept too, for whoever reads the
service's log. No password or invite link is ever recorded.
"""

from __future__ import annotations

import structlog

from vcs_intake.people.model import Invitation, Person, SignInAttempt
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.audit_trail import AuditTrail
from vcs_shared.offices import find_office

log = structlog.get_logger(__name__)

SIGNED_IN = "signed_in"


def person_provinces(person: Person) -> tuple[str, ...]:
    """The provinces an entry about this person concerns: its office's, or an operator's
    (none for a national operator: its entries are the national role's)."""
    if person.district_code is not None:
        office = find_office(person.district_code)
        return (office.province_code,) if office else ()
    if person.national:
        return ()
    return tuple(sorted(person.operator_provinces()))


def person_actor(person: Person) -> Actor:
    return Actor(kind="person", id=f"person:{person.person_id}", name=person.name)


def sign_in_entry(attempt: SignInAttempt) -> AuditRecorded:
    person = attempt.person
    actor = (
        person_actor(person)
        if person is not None
        else Actor(kind="person", id=f"email:{attempt.email}", name=attempt.email)
    )
    return AuditRecorded(
        actor=actor,
        action=AuditAction.sign_in,
        outcome="success" if attempt.outcome == SIGNED_IN else "failure",
        target=Target(kind="person", id=attempt.email),
        provinces=person_provinces(person) if person is not None else (),
        after=attempt.outcome,
        detail=_sign_in_detail(attempt),
        at=attempt.at,
    )


def _sign_in_detail(attempt: SignInAttempt) -> str | None:
    """How and from where: ``single sign-on from 10.0.0.7`` (a password sign-in says only where)."""
    how = "single sign-on" if attempt.method == "oidc" else None
    where = f"from {attempt.client}" if attempt.client else None
    return " ".join(part for part in (how, where) if part) or None


def invite_entry(invitation: Invitation, command_line: Actor) -> AuditRecorded:
    person = invitation.person
    return AuditRecorded(
        actor=Actor.of(invitation.by) if invitation.by is not None else command_line,
        action=AuditAction.user_invite,
        target=Target(kind="person", id=person.email),
        provinces=person_provinces(person),
        after=f"{person.name} <{person.email}>, {person.scope_label()}, invited for 72 hours",
        at=invitation.at,
    )


class AuditedSignIns:
    """Every sign-in attempt, successful or not, is one entry of the audit log."""

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    async def record(self, attempt: SignInAttempt) -> None:
        log.info(
            "audit.sign_in",
            outcome=attempt.outcome,
            person_id=attempt.person.person_id if attempt.person else None,
            email=attempt.email,
            client=attempt.client,
            method=attempt.method,
        )
        await self._trail.record(sign_in_entry(attempt))


class AuditedInvitations:
    """Every invitation is one entry: the operator who invited from the console, or the
    ``vcs user`` command (``command_line``) on the server."""

    def __init__(self, trail: AuditTrail, *, command_line: Actor) -> None:
        self._trail = trail
        self._command_line = command_line

    async def record(self, invitation: Invitation) -> None:
        entry = invite_entry(invitation, self._command_line)
        log.info(
            "audit.user_invite",
            person_id=invitation.person.person_id,
            email=invitation.person.email,
            scope=invitation.person.scope_label(),
            by=entry.actor.id,
        )
        await self._trail.record(entry)
