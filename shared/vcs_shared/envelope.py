"""Events in and out of CloudEvents 1.0 structured JSON mode, through the CNCF SDK.

The body is the whole CloudEvent (``application/cloudevents+json``); the
CloudEvents ``id`` is also the AMQP ``message_id``, so any AMQP client can
deduplicate without parsing the body.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from cloudevents.core.bindings import rabbitmq
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, ValidationError

from vcs_shared.audit import AuditRecorded
from vcs_shared.events import EVENT_TYPES, Event
from vcs_shared.tracing import TRACE_ATTRIBUTES, current_trace_attributes

CONTENT_TYPE = "application/cloudevents+json"
SOURCE_PREFIX = "/dopa-vcs/"


Exchange = Literal["events", "audit"]
"""Where a message goes: the public ``<ns>.events`` or the internal ``<ns>.audit``."""


class OutgoingMessage(BaseModel):
    """An encoded event ready for the broker; also the shape of an outbox entry."""

    model_config = ConfigDict(frozen=True)

    id: str
    routing_key: str
    body: str
    exchange: Exchange = "events"


E_co = TypeVar("E_co", bound=Event, covariant=True)


@dataclass(frozen=True, slots=True)
class Envelope(Generic[E_co]):
    """A decoded event with the CloudEvents attributes the services use.

    Generic in its event, so a handler declares the one it takes
    (``Envelope[RoomAssigned]``) and the handler table checks it (:mod:`vcs_shared.dispatch`).
    """

    id: str
    event: E_co
    time: datetime | None
    source: str
    correlation_id: str | None
    trace: Mapping[str, str] = field(default_factory=dict)
    """``traceparent`` (and ``tracestate``) of the span that published it, if any."""


class PoisonMessage(ValueError):
    """A message that can never be handled: not JSON, not a CloudEvent, or data off its schema."""


def encode(
    event: Event | AuditRecorded, *, source: str, correlation_id: str | None = None
) -> OutgoingMessage:
    """Wraps ``event`` in a new CloudEvent with a fresh id; an audit entry goes to the internal
    audit exchange, with its target as the subject."""
    event_id = str(uuid.uuid4())
    audit = isinstance(event, AuditRecorded)
    subject = event.target.id if isinstance(event, AuditRecorded) else event.request_id
    attributes: dict[str, Any] = {
        "id": event_id,
        "source": SOURCE_PREFIX + source,
        "type": event.cloudevent_type(),
        "subject": subject,
        "time": datetime.now(UTC),
        "datacontenttype": "application/json",
    }
    if correlation_id:
        attributes["correlationid"] = correlation_id
    attributes.update(current_trace_attributes())
    data = json.loads(event.model_dump_json())
    message = rabbitmq.to_structured_event(CloudEvent(attributes=attributes, data=data))
    return OutgoingMessage(
        id=event_id,
        routing_key=event.routing_key(),
        body=message.body.decode(),
        exchange="audit" if audit else "events",
    )


def _cloudevent(body: bytes) -> CloudEvent:
    try:
        return rabbitmq.from_structured_event(
            rabbitmq.RabbitMQMessage(headers={}, content_type=CONTENT_TYPE, body=body)
        )
    except Exception as exc:  # the SDK raises several unrelated types for bad input
        raise PoisonMessage(f"not a CloudEvent: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AuditEnvelope:
    """A decoded audit entry and its CloudEvent id (the desk's key: a redelivery adds nothing)."""

    id: str
    entry: AuditRecorded
    source: str


def decode_audit(body: bytes) -> AuditEnvelope:
    """Parses an ``audit.recorded`` CloudEvent; raises :class:`PoisonMessage` otherwise."""
    cloudevent = _cloudevent(body)
    if cloudevent.get_type() != AuditRecorded.cloudevent_type():
        raise PoisonMessage(f"not an audit entry: {cloudevent.get_type()!r}")
    try:
        entry = AuditRecorded.model_validate(cloudevent.get_data())
    except ValidationError as exc:
        raise PoisonMessage(f"audit entry fails its schema: {exc}") from exc
    return AuditEnvelope(id=cloudevent.get_id(), entry=entry, source=cloudevent.get_source())


def decode(body: bytes) -> Envelope[Event]:
    """Parses a structured-mode CloudEvent into its event model; raises :class:`PoisonMessage`."""
    cloudevent = _cloudevent(body)
    event_type = EVENT_TYPES.get(cloudevent.get_type())
    if event_type is None:
        raise PoisonMessage(f"unknown event type {cloudevent.get_type()!r}")
    try:
        event = event_type.model_validate(cloudevent.get_data())
    except ValidationError as exc:
        raise PoisonMessage(f"data of {cloudevent.get_type()} fails its schema: {exc}") from exc
    attributes = cloudevent.get_attributes()
    correlation = attributes.get("correlationid")
    return Envelope(
        id=cloudevent.get_id(),
        event=event,
        time=cloudevent.get_time(),
        source=cloudevent.get_source(),
        correlation_id=str(correlation) if correlation else None,
        trace={key: str(attributes[key]) for key in TRACE_ATTRIBUTES if attributes.get(key)},
    )
