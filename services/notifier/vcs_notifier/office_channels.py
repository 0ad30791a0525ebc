"""What an office (or its operator) may set about the channels that reach it: its webhook
(URL and signing secret) and its LINE group. The scope rule is here, once, for every route:
an office only its own district, an operator only the districts of its provinces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vcs_notifier.webhook_domain import SigningSecret, WebhookRegistration
from vcs_notifier.webhook_guard import NetworkPolicy
from vcs_notifier.webhook_store import MongoLineGroups, WebhookStore
from vcs_notifier.webhooks import new_secret
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.auth import Principal
from vcs_shared.clock import Clock, utc_now
from vcs_shared.offices import Office, find_office
from vcs_shared.outbox import Announcement
from vcs_shared.scope import Scope


class NotYours(Exception):
    """The caller may not set the channels of this district (403); the message says why."""


class UnknownOffice(Exception):
    """No DOPA district has this code (404)."""


def office_for(principal: Principal, district_code: str) -> Office:
    """The office whose channels ``principal`` wants to set, if it may."""
    office = find_office(district_code)
    if office is None:
        raise UnknownOffice(f"no district office has the code {district_code}")
    if principal.is_operator:
        scope = Scope.of(principal)
        if not scope.covers_province(office.province_code):
            raise NotYours(
                f"district {district_code} is outside your provinces ({scope.describe()})"
            )
    elif principal.district_code != district_code:
        raise NotYours(
            f"an office token may set only its own district's channels, not {district_code}"
        )
    return office


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """What registering or rotating answers, once: the new secret, and until when the one
    before it still signs."""

    registration: WebhookRegistration
    secret: str
    previous_valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class OfficeChannels:
    """Each change is written with its audit entry (who, which office, what), so the desk's
    audit log shows who pointed an office's messages where."""

    webhooks: WebhookStore
    line_groups: MongoLineGroups
    policy: NetworkPolicy
    clock: Clock = utc_now

    async def register_webhook(
        self,
        office: Office,
        url: str,
        by: Principal,
        action: AuditAction = AuditAction.webhook_register,
    ) -> WebhookSecret:
        """Sets the office's webhook URL with a fresh secret (the URL already checked by the
        caller with :attr:`policy`); a secret before it keeps signing for a while."""
        now = self.clock()
        secret = new_secret()
        current = await self.webhooks.registration(office.district_code)
        if current is None:
            registration = WebhookRegistration(
                office.district_code, office.province_code, url, (SigningSecret(secret),), now
            )
        else:
            registration = current.rotated(url, secret, now)
        before = None if current is None else current.url
        entry = _entry(by, action, office, now, before=before, after=url)
        await self.webhooks.register(registration, _audited(entry))
        previous = registration.secrets[1].until if len(registration.secrets) > 1 else None
        return WebhookSecret(registration, secret, previous)

    async def rotate_secret(self, office: Office, by: Principal) -> WebhookSecret | None:
        """A new secret for the registered URL; None if the office has no webhook."""
        current = await self.webhooks.registration(office.district_code)
        if current is None:
            return None
        return await self.register_webhook(office, current.url, by, AuditAction.webhook_rotate)

    async def remove_webhook(self, office: Office, by: Principal) -> bool:
        current = await self.webhooks.registration(office.district_code)
        if current is None:
            return False
        entry = _entry(by, AuditAction.webhook_remove, office, self.clock(), before=current.url)
        return await self.webhooks.unregister(office.district_code, _audited(entry))

    async def set_line_group(self, office: Office, group_id: str | None, by: Principal) -> None:
        action = AuditAction.line_register if group_id else AuditAction.line_remove
        before = await self.line_groups.line_group(office.district_code)
        entry = _entry(by, action, office, self.clock(), before=before, after=group_id)
        await self.line_groups.set_line_group(office.district_code, group_id, _audited(entry))


def _entry(
    by: Principal,
    action: AuditAction,
    office: Office,
    at: datetime,
    *,
    before: str | None = None,
    after: str | None = None,
) -> AuditRecorded:
    return AuditRecorded(
        actor=Actor.of(by),
        action=action,
        target=Target(kind="office", id=office.district_code),
        provinces=(office.province_code,),
        before=before,
        after=after,
        at=at,
    )


def _audited(entry: AuditRecorded) -> Announcement:
    return Announcement(audit=(entry,))
