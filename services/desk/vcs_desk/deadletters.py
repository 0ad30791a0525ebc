"""Operators' view of the dead-letter queues: list what is there, replay it after a fix.

* Listing takes the messages with ``basic.get`` without acknowledging them and
  gives them all back by closing the channel: RabbitMQ puts requeued messages
  of a classic queue back at their original position, so a listing neither
  loses nor reorders anything (the DLQs are classic queues for this reason).
* Replaying republishes a message through the replay exchange (``<ns>.replay``,
  headers) with the header naming the one service it came from and **its
  original routing key**, so the consumer sees it exactly as first delivered;
  publisher confirms and ``mandatory``; the dead-letter copy is acknowledged
  only after the confirm: a crash in between leaves a duplicate, never a loss,
  and consumers deduplicate by event id. The replayed message carries no
  ``x-death`` history and no dead-letter reason, and starts a fresh delivery
  count; if it still cannot be handled it comes back.
* **Poison** (not JSON, not a CloudEvent, data off its schema) can never be
  handled, so a replay leaves it where it is unless asked explicitly
  (``include_poison``).
* Every letter belongs to the province its routing key names
  (``<event>.<province>.<district>``); an operator sees and replays only the
  letters of its provinces (:class:`~vcs_shared.scope.Scope`), one whose key
  names no province only the national role.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from vcs_shared.broker import DEAD_REASON_HEADER, ORIGINAL_ROUTING_KEY_HEADER
from vcs_shared.envelope import PoisonMessage, decode
from vcs_shared.metrics import DEAD_LETTERS
from vcs_shared.offices import is_province
from vcs_shared.scope import Scope
from vcs_shared.topology import CONSUMERS, Topology, replay_headers

log = structlog.get_logger(__name__)

SERVICES: tuple[str, ...] = tuple(CONSUMERS)
REPLAYED_HEADER = "x-vcs-replayed"
MAX_SCAN = 10_000
"""The most letters of one queue a listing or a replay looks at."""
MAX_REASON_CHARS = 300
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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message as an operator needs to see it."""

    service: str
    message_id: str | None
    event_type: str | None
    request_id: str | None
    """The request it is about (the CloudEvent's subject), when the body says."""
    routing_key: str
    """The routing key it was first published with (a replay keeps it)."""
    province_code: str | None
    reason: str | None
    """Why it died, on one line."""
    poison: bool
    """It can never be handled (a replay leaves it alone unless asked)."""
    deaths: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "message_id": self.message_id,
            "event_type": self.event_type,
            "request_id": self.request_id,
            "routing_key": self.routing_key,
            "province_code": self.province_code,
            "reason": self.reason,
            "poison": self.poison,
            "deaths": self.deaths,
        }


@dataclass(frozen=True, slots=True)
class ReplayResult:
    service: str
    replayed: list[str | None]
    skipped_poison: list[str | None]
    """Poison that matched but was left in place (``include_poison`` was not set)."""
    left: int
    """The caller's letters still in this service's DLQ."""


class DeadLetters:
    """List and replay the DLQs of one namespace over an open connection."""

    def __init__(self, connection: AbstractConnection, topology: Topology) -> None:
        self._connection = connection
        self._topology = topology

    async def check(self) -> None:
        """Passive checks (they need no permission) that the replay exchange and every DLQ
        exist; a missing one fails the start with the broker's 404, naming it."""
        channel = await self._connection.channel()
        try:
            await channel.get_exchange(self._topology.replay_exchange, ensure=True)
            for service in SERVICES:
                await channel.get_queue(self._topology.dead_letter_queue(service), ensure=True)
        finally:
            await channel.close()

    async def depths(self) -> dict[str, int]:
        """``DLQ name -> messages in it`` for every DLQ that answers now (passive declares, no
        permission needed). A DLQ that does not answer (its node is down: the broker closes
        the channel) is left out and the next one asked on a fresh channel."""
        found: dict[str, int] = {}
        channel = await self._connection.channel()
        try:
            for service in SERVICES:
                name = self._topology.dead_letter_queue(service)
                try:
                    queue = await channel.get_queue(name, ensure=True)  # a passive declare
                except Exception as exc:  # a 404 or a closed channel: not countable now
                    log.warning("dlq.depth_unknown", queue=name, error=repr(exc))
                    with contextlib.suppress(Exception):
                        await channel.close()
                    channel = await self._connection.channel()
                    continue
                found[name] = int(queue.declaration_result.message_count or 0)
        finally:
            with contextlib.suppress(Exception):  # closed already by the broker
                await channel.close()
        return found

    async def peek(self, service: str, scope: Scope, *, limit: int = 1000) -> list[DeadLetter]:
        """Up to ``limit`` of the caller's dead letters of ``service``, oldest first; the
        queue is unchanged."""
        channel = await self._connection.channel()
        try:
            queue = await self._dlq(channel, service)
            letters = [describe(service, m) for m in await _take(queue)]
            return [letter for letter in letters if _visible(letter, scope)][:limit]
        finally:
            await channel.close()  # gives every message back, in its place

    async def replay(
        self,
        service: str,
        scope: Scope,
        message_id: str | None = None,
        *,
        include_poison: bool = False,
    ) -> ReplayResult:
        """Replays the caller's dead letter with ``message_id``, or all of them when it is
        None; poison only with ``include_poison``."""
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            queue = await self._dlq(channel, service)
            replay = await channel.get_exchange(self._topology.replay_exchange, ensure=False)
            replayed: list[str | None] = []
            skipped: list[str | None] = []
            visible = 0
            for message in await _take(queue):
                letter = describe(service, message)
                if not _visible(letter, scope):
                    continue
                visible += 1
                if message_id is not None and letter.message_id != message_id:
                    continue
                if letter.poison and not include_poison:
                    skipped.append(letter.message_id)
                    continue
                await replay.publish(
                    fresh_copy(message, letter), routing_key=letter.routing_key, mandatory=True
                )
                await message.ack()
                replayed.append(letter.message_id)
                log.info(
                    "dlq.replayed",
                    service=service,
                    message_id=letter.message_id,
                    routing_key=letter.routing_key,
                    poison=letter.poison,
                )
            return ReplayResult(service, replayed, skipped, left=visible - len(replayed))
        finally:
            await channel.close()  # what was not replayed goes back, in its place

    async def _dlq(self, channel: AbstractChannel, service: str) -> AbstractQueue:
        if service not in SERVICES:
            raise ValueError(f"no dead-letter queue for {service!r}; one of {SERVICES}")
        return await channel.get_queue(self._topology.dead_letter_queue(service), ensure=True)


COUNT_EVERY = 5.0


async def count_dead_letters(letters: DeadLetters, stop: asyncio.Event) -> None:
    """Keeps ``vcs_dead_letters`` current until ``stop``: the queue's delivery limit
    dead-letters a message in the broker, out of sight of every consumer, so only the DLQs
    themselves tell how many wait for a person."""
    while not stop.is_set():
        try:
            depths = await letters.depths()
        except Exception as exc:  # no channel now (the broker is away): try again later
            log.warning("dlq.count_failed", error=repr(exc))
            depths = {}
        for name, count in depths.items():
            DEAD_LETTERS.labels(name).set(count)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=COUNT_EVERY)


def _visible(letter: DeadLetter, scope: Scope) -> bool:
    return scope.covers_province(letter.province_code)


async def _take(queue: AbstractQueue) -> list[AbstractIncomingMessage]:
    """Gets the messages present now without acking them (they stay owned by this channel)."""
    declared = await queue.declare()
    taken = []
    for _ in range(min(declared.message_count or 0, MAX_SCAN)):
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        taken.append(message)
    return taken


def fresh_copy(message: AbstractIncomingMessage, letter: DeadLetter) -> aio_pika.Message:
    """The message as first published, addressed to the queue of ``letter``'s service (for the
    allocator, its province's shard): same body and id, no dead-letter history."""
    headers = {k: v for k, v in (message.headers or {}).items() if k not in _DEATH_HEADERS}
    headers[REPLAYED_HEADER] = True
    headers.update(replay_headers(letter.service, letter.province_code))
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
    routing_key = str(_plain(original or message.routing_key or ""))
    event_type, poison = _inspect(message.body)
    reason = headers.get(DEAD_REASON_HEADER) or (deaths[0].get("reason") if deaths else None)
    reason = reason or poison
    return DeadLetter(
        service=service,
        message_id=message.message_id,
        event_type=event_type,
        request_id=_subject(message.body),
        routing_key=routing_key,
        province_code=_province(routing_key),
        reason=one_line(str(_plain(reason))) if reason else None,
        poison=poison is not None,
        deaths=deaths,
    )


def one_line(text: str) -> str:
    """The text on one line, whitespace collapsed, cut to :data:`MAX_REASON_CHARS`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_REASON_CHARS else flat[: MAX_REASON_CHARS - 1] + "…"


def _inspect(body: bytes) -> tuple[str | None, str | None]:
    """The CloudEvents type if the body is one, and why it is poison if it is."""
    try:
        return decode(body).event.cloudevent_type(), None
    except PoisonMessage as exc:
        return _event_type(body), str(exc)


def _event_type(body: bytes) -> str | None:
    return _attribute(body, "type")


def _subject(body: bytes) -> str | None:
    """The request a dead letter is about, so the stuck requests can show their letters."""
    return _attribute(body, "subject")


def _attribute(body: bytes, name: str) -> str | None:
    """A CloudEvents attribute of a JSON body, however broken the rest of it is."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    value = parsed.get(name) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


def _province(routing_key: str) -> str | None:
    """The province a routing key ``<event>.<province>.<district>`` names, if it names one."""
    parts = routing_key.split(".")
    return parts[-2] if len(parts) >= 3 and is_province(parts[-2]) else None


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
