"""Operators' view of the dead-letter queues: list what is there, replay it after a fix.

Used by the ``vcs dlq`` command and the intake's admin endpoint, so both behave the same.

* Listing takes the messages with ``basic.get`` without acknowledging them and
  gives them all back by closing the channel: RabbitMQ puts requeued messages
  of a classic queue back at their original position, so a listing neither
  loses nor reorders anything (the DLQs are classic queues for this reason).
* Replaying republishes a message to the service's own queue through the
  default exchange (routing key = queue name), with publisher confirms and
  ``mandatory``, and acknowledges the dead-letter copy only after the confirm:
  a crash in between leaves a duplicate, never a loss, and consumers
  deduplicate by event id. The replayed message carries no ``x-death`` history
  and no dead-letter reason, and starts a fresh delivery count, so it is
  handled exactly as a fresh one; if it still cannot be handled it comes back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from vcs_shared.broker import DEAD_REASON_HEADER, ORIGINAL_ROUTING_KEY_HEADER
from vcs_shared.topology import CONSUMERS, Topology

log = structlog.get_logger(__name__)

SERVICES: tuple[str, ...] = tuple(CONSUMERS)
REPLAYED_HEADER = "x-vcs-replayed"
_DEATH_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
    DEAD_REASON_HEADER,
)


class UnknownService(ValueError):
    """Only the consuming services have dead-letter queues."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message as an operator needs to see it."""

    service: str
    message_id: str | None
    event_type: str | None
    routing_key: str
    reason: str | None
    deaths: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "message_id": self.message_id,
            "event_type": self.event_type,
            "routing_key": self.routing_key,
            "reason": self.reason,
            "deaths": self.deaths,
        }


@dataclass(frozen=True, slots=True)
class ReplayResult:
    service: str
    replayed: list[str | None]
    left: int


class DeadLetters:
    """List and replay the DLQs of one namespace over an open connection."""

    def __init__(self, connection: AbstractConnection, topology: Topology) -> None:
        self._connection = connection
        self._topology = topology

    async def peek(self, service: str, *, limit: int = 1000) -> list[DeadLetter]:
        """Up to ``limit`` dead letters of ``service``, oldest first; the queue is unchanged."""
        channel = await self._connection.channel()
        try:
            queue = await self._dlq(channel, service)
            return [describe(service, m) for m in await _take(queue, limit)]
        finally:
            await channel.close()  # gives every message back, in its place

    async def replay(self, service: str, message_id: str | None = None) -> ReplayResult:
        """Replays the dead letter with ``message_id``, or all of them when it is None."""
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            queue = await self._dlq(channel, service)
            messages = await _take(queue, None)
            replayed: list[str | None] = []
            for message in messages:
                if message_id is not None and message.message_id != message_id:
                    continue
                await channel.default_exchange.publish(
                    fresh_copy(message),
                    routing_key=self._topology.queue(service),
                    mandatory=True,
                )
                await message.ack()
                replayed.append(message.message_id)
                log.info("dlq.replayed", service=service, message_id=message.message_id)
            return ReplayResult(service, replayed, left=len(messages) - len(replayed))
        finally:
            await channel.close()

    async def _dlq(self, channel: AbstractChannel, service: str) -> AbstractQueue:
        if service not in SERVICES:
            raise UnknownService(f"no dead-letter queue for {service!r}; one of {SERVICES}")
        return await channel.get_queue(self._topology.dead_letter_queue(service), ensure=True)


async def _take(queue: AbstractQueue, limit: int | None) -> list[AbstractIncomingMessage]:
    """Gets the messages present now without acking them (they stay owned by this channel)."""
    declared = await queue.declare()
    count = declared.message_count or 0
    if limit is not None:
        count = min(count, limit)
    taken = []
    for _ in range(count):
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        taken.append(message)
    return taken


def fresh_copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    """The message as first published: same body and id, no dead-letter history."""
    headers = {k: v for k, v in (message.headers or {}).items() if k not in _DEATH_HEADERS}
    headers[REPLAYED_HEADER] = True
    return aio_pika.Message(
        body=message.body,
        content_type=message.content_type,
        message_id=message.message_id,
        headers=headers,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def describe(service: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    deaths = [_plain(d) for d in _as_list(headers.get("x-death"))]
    original = headers.get(ORIGINAL_ROUTING_KEY_HEADER)
    if not original and deaths:
        keys = deaths[0].get("routing-keys") or []
        original = keys[0] if keys else None
    reason = headers.get(DEAD_REASON_HEADER) or (deaths[0].get("reason") if deaths else None)
    return DeadLetter(
        service=service,
        message_id=message.message_id,
        event_type=_event_type(message.body),
        routing_key=str(_plain(original or message.routing_key or "")),
        reason=str(_plain(reason)) if reason else None,
        deaths=deaths,
    )


def _event_type(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    return kind if isinstance(kind, str) else None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _plain(value: Any) -> Any:
    """Header values as JSON-friendly data (AMQP tables carry bytes and datetimes)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
