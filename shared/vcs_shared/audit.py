"""The audit log's entry: ``audit.recorded``, what an operator (or a person, or the CLI) did.

Kept apart from :mod:`vcs_shared.events` on purpose: those are the public contract on
``<ns>.events``, which integrations may bind with ``#``, and an audit entry names people.
An entry travels on the internal exchange ``<ns>.audit`` (only the services publish there,
only the desk reads it) and is not in the published AsyncAPI document. The service that
performs an action builds the entry and writes it in the same outbox write as the action's
change where there is one (a cancel), else as its own outbox document
(:mod:`vcs_shared.audit_trail`); the desk appends it to its log keyed by the CloudEvent id.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vcs_shared.auth import Principal, Role
from vcs_shared.events import CLOUDEVENT_TYPE_PREFIX


class AuditAction(StrEnum):
    """What was done; stable names (the CSV and the ``action`` filter use them)."""

    sign_in = "sign_in"
    user_invite = "user_invite"
    pool_reload = "pool_reload"
    request_cancel = "request_cancel"
    token_issue = "token_issue"
    token_revoke = "token_revoke"
    dead_letter_replay = "dead_letter_replay"
    room_reassign = "room_reassign"
    credentials_redeliver = "credentials_redeliver"
    support_claim = "support_claim"
    support_done = "support_done"
    webhook_register = "webhook_register"
    webhook_rotate = "webhook_rotate"
    webhook_remove = "webhook_remove"
    line_register = "line_register"
    line_remove = "line_remove"


ActorKind = Literal["person", "operator", "office", "cli"]
"""A signed-in person, an operator's or an office's bearer token, or a command on the server."""


class Actor(BaseModel):
    """Who did it: ``id`` is stable (``person:<id>``, ``operator:somsri``, ``office:4701``,
    ``cli:<os user>``), ``name`` is what people read."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: ActorKind
    id: str = Field(min_length=1, max_length=200)
    name: str = Field(max_length=200)

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        """The caller behind a token or a session (a person's session carries its name)."""
        if principal.subject.startswith("person:"):
            kind: ActorKind = "person"
        else:
            kind = "office" if principal.role is Role.office else "operator"
        name = principal.name or principal.subject.partition(":")[2] or principal.subject
        return cls(kind=kind, id=principal.subject, name=name)

    @classmethod
    def command_line(cls, os_user: str, command: str) -> Actor:
        """A ``vcs`` command run on the server by ``os_user`` (whoever holds the secrets)."""
        return cls(kind="cli", id=f"cli:{os_user}", name=f"{os_user} ({command})")


class Target(BaseModel):
    """What it was done to: ``kind`` (request, person, token, pool, dead_letter, …) and id."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: str = Field(min_length=1, max_length=40)
    id: str = Field(max_length=500)


class AuditRecorded(BaseModel):
    """One operator action, as the service that performed it saw it.

    ``provinces`` are those the action concerns: the desk shows the entry to operators
    covering any of them; an entry with none (a national token, an unknown e-mail's failed
    sign-in) is the national role's only. ``before``/``after`` are short summaries for
    people, not data to compute with.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: ClassVar[str] = "audit.recorded"

    actor: Actor
    action: AuditAction
    outcome: Literal["success", "failure"] = "success"
    target: Target
    provinces: tuple[str, ...] = ()
    before: str | None = Field(default=None, max_length=2000)
    after: str | None = Field(default=None, max_length=2000)
    detail: str | None = Field(default=None, max_length=2000)
    at: AwareDatetime

    @classmethod
    def cloudevent_type(cls) -> str:
        return f"{CLOUDEVENT_TYPE_PREFIX}{cls.name}.v1"

    def routing_key(self) -> str:
        return f"{self.name}.{self.action.value}"
