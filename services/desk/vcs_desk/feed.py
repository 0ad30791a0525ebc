"""The live feed's rules, without I/O: what an operator may see of an event, and under which name.

The feed shows every event on ``<ns>.events`` of the caller's provinces as a
server-sent event: ``event:`` the event name (``room.assigned``), ``id:`` the
CloudEvent id, ``data:`` the CloudEvent JSON **without secrets**. Operators
watch allocations; they never need a sealed passcode or an office contact's
personal details on a screen others may see, so :func:`without_secrets` drops
every field that carries one, however deep, whatever the event (new event
types included: the rule is by field name, not by event type).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vcs_shared.events import CLOUDEVENT_TYPE_PREFIX
from vcs_shared.offices import is_province
from vcs_shared.scope import Scope

SECRET_FIELD_PREFIXES = ("sealed", "contact", "passcode", "password", "secret")
"""A data field whose name starts with one of these never reaches the feed
(``sealed_credentials``, ``contact``, ``contact_email``, ``webhook_secret`` ...)."""


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event as the feed sends it, with its position in the stream."""

    offset: int
    event_id: str
    name: str
    province_code: str | None
    data: str
    """The CloudEvent as JSON, secrets removed."""

    def visible_to(self, scope: Scope, province: str | None = None) -> bool:
        """Whether the caller may see it (its provinces; one with none only the national
        role), narrowed to ``province`` when the caller asked for one."""
        if province is not None and self.province_code != province:
            return False
        return scope.covers_province(self.province_code)


def read_event(offset: int, body: bytes, routing_key: str | None) -> FeedEvent | None:
    """The feed's view of one message of the stream; None for what is not a CloudEvent
    (poison is the consumers' business, not something to show operators)."""
    try:
        cloudevent = json.loads(body)
    except ValueError:
        return None
    if not isinstance(cloudevent, dict):
        return None
    event_id, event_type = cloudevent.get("id"), cloudevent.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        return None
    data = cloudevent.get("data")
    province = _province_of(routing_key, data)
    return FeedEvent(
        offset=offset,
        event_id=event_id,
        name=event_name(event_type),
        province_code=province,
        data=json.dumps(without_secrets(cloudevent), ensure_ascii=False, separators=(",", ":")),
    )


def event_name(cloudevent_type: str) -> str:
    """``th.go.dopa.vcs.room.assigned.v1`` -> ``room.assigned`` (another type as it is)."""
    if not cloudevent_type.startswith(CLOUDEVENT_TYPE_PREFIX):
        return cloudevent_type
    name = cloudevent_type.removeprefix(CLOUDEVENT_TYPE_PREFIX)
    base, _, version = name.rpartition(".")
    return base if base and version.startswith("v") and version[1:].isdigit() else name


def without_secrets(value: Any) -> Any:
    """``value`` with every mapping key that names a secret removed, at any depth."""
    if isinstance(value, dict):
        return {
            key: without_secrets(item)
            for key, item in value.items()
            if not (isinstance(key, str) and key.lower().startswith(SECRET_FIELD_PREFIXES))
        }
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value


def _province_of(routing_key: str | None, data: Any) -> str | None:
    """The province an event is about: its routing key ``<event>.<province>.<district>``,
    else its data's ``province_code``."""
    parts = (routing_key or "").split(".")
    if len(parts) >= 3 and is_province(parts[-2]):
        return parts[-2]
    code = data.get("province_code") if isinstance(data, dict) else None
    return code if isinstance(code, str) and is_province(code) else None
