"""The broker topology, defined once: exchanges, queues with their arguments, bindings.

Names shown for the default namespace ``vcs``:

* ``vcs.events`` — durable topic exchange, the public contract.
* ``vcs.<service>`` — one durable quorum queue per consuming service, with a
  delivery limit; what keeps failing is dead-lettered to ``vcs.dead``.
* ``vcs.allocator.<k>`` — the allocator's queue is split by province into :data:`SHARDS`
  quorum queues, each with a **single active consumer**: one allocator process at a time
  allocates a province's rooms, so several processes never race for the same room (the
  store's unique index still settles every claim). Each binds ``<event>.<province>.*`` for
  its provinces (:func:`shard_of`); the processes subscribe to every shard in a random order,
  and the broker hands a shard to its first subscriber and, when that one goes, to the next.
  The unsplit ``vcs.allocator`` of earlier releases is retired
  (:meth:`Topology.retired_queues`): unbound at declaration, drained by the allocators.
* ``vcs.dead`` — direct exchange routing dead letters by queue name to
  ``vcs.<service>.dlq``, classic durable queues that operators list and replay
  (classic, because listing requeues and a quorum queue would count that
  against a delivery limit of its own).
* ``vcs.feed`` — a RabbitMQ **stream** bound to ``vcs.events`` with ``#``: every event, kept
  for a while (:data:`FEED_RETENTION`, :data:`FEED_MAX_BYTES`) and readable from any offset, so
  the desk's live feed (``GET /v1/admin/feed``) can resume a reconnecting operator exactly
  where it left off. Only the desk reads it.
* ``vcs.audit`` — internal topic exchange of the audit log's entries (``audit.recorded``,
  :mod:`vcs_shared.audit`): the services publish there what operators did, and only the
  desk reads it, from ``vcs.desk.audit`` (a quorum queue bound with ``#``, dead-lettering to
  ``vcs.desk.audit.dlq`` like the service queues). Not on ``vcs.events``: integrations may
  bind ``#`` there, and audit entries name people.
* ``vcs.replay`` — headers exchange through which operators (the desk) put a
  dead letter back into the one queue it came from, with its original routing
  key: each service queue is bound on the header ``vcs-replay-to: <service>``.
  Nobody needs to publish to the default exchange (``amq.default``).

:data:`CONSUMERS` says which events reach each service's queue, by event class; each
binding key (``<event>.#``) is derived from the class. The map lives here, where every
service can read it, because any service may declare the whole topology at start, so
that a queue exists and collects its events before its own service first runs. Each
service's handler table must handle exactly its queue's events: the consumer refuses to
start otherwise (:func:`require_subscribed`), and a unit test checks all three services,
so a binding without a handler (a message acked and dropped) cannot ship.

This module is data only. :func:`vcs_shared.broker.declare_topology` declares
:meth:`Topology.definition` with aio-pika, and ``vcs_tools.rabbitmq`` renders the same
definition as RabbitMQ definitions (``deploy/rabbitmq/definitions.json``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from vcs_shared.events import (
    EVENT_TYPES,
    CredentialsDelivered,
    CredentialsFailed,
    Event,
    RequestCancelled,
    RequestRejected,
    RequestSubmitted,
    RoomAssigned,
    RoomReassigned,
    RoomReleased,
)

DELIVERY_LIMIT = 20
"""Deliveries of one message before its queue dead-letters it: RabbitMQ 4.x's default. Outages
do not spend it (consumers wait them out holding the message), but on 3.10 every message a
consumer held when it died, or when its node went, comes back counted; 5 dead-lettered good
messages after a few SIGKILLs and broker restarts. A handler that always fails is not retried
in place, so it reaches 20 within seconds."""
FEED_RETENTION = timedelta(days=7)
"""How long the feed stream keeps events: a reconnect can resume within this."""
FEED_MAX_BYTES = 2_000_000_000
"""The feed stream's size cap (about a million events); the oldest segments go first."""
FEED_SEGMENT_BYTES = 50_000_000
"""Retention drops whole segments: small ones keep the stream close to its caps."""
AUDIT_CONSUMER = "desk.audit"
"""The audit queue's name after the namespace: the desk's, apart from any event queue."""
REPLAY_HEADER = "vcs-replay-to"
"""Names the service a replayed message goes back to (RabbitMQ ignores ``x-`` binding
arguments when matching headers, hence no prefix)."""
REPLAY_SHARD_HEADER = "vcs-replay-shard"
"""With :data:`REPLAY_HEADER`, the shard queue of a split service a replayed message goes to."""
SHARDS: dict[str, int] = {"allocator": 8}
"""Services whose queue is split by province, and into how many single-active-consumer shards.
Provinces go to shards by their code modulo the count, so the 77 spread over all of them.
Changing a count moves provinces between queues: only with the allocators stopped and
their queues empty."""
PROVINCE_CODES = tuple(f"{code:02d}" for code in range(100))
"""Every two-digit province code a routing key can carry: each shard binds its share of all
of them, so a province added to the register needs no new binding."""

CONSUMERS: dict[str, tuple[type[Event], ...]] = {
    "allocator": (RequestSubmitted, RequestCancelled),
    "notifier": tuple(EVENT_TYPES.values()),
    "intake": (
        RoomAssigned,
        RoomReassigned,
        RequestRejected,
        RoomReleased,
        CredentialsDelivered,
        CredentialsFailed,
    ),
    "desk": (
        RequestSubmitted,
        RoomAssigned,
        RoomReassigned,
        RequestRejected,
        RequestCancelled,
        RoomReleased,
        CredentialsDelivered,
        CredentialsFailed,
    ),
}
"""The consuming services, and the events their queues receive. The notifier receives every
event: besides the ones it acts on, it forwards each to the office's webhook (an office's
receiver gets every event of its requests and support tickets)."""


def binding_key(event_type: type[Event]) -> str:
    """The key binding a queue to every event of one type, whatever its province and district."""
    return f"{event_type.name}.#"


def binding_keys(service: str) -> tuple[str, ...]:
    return tuple(binding_key(event_type) for event_type in CONSUMERS[service])


class SubscriptionMismatch(ValueError):
    """A service's handler table and its queue's bindings name different events."""


def require_subscribed(service: str, handled: Collection[type[Event]]) -> None:
    """Raises :class:`SubscriptionMismatch` unless ``handled`` are exactly the events bound to
    ``service``'s queue: an event bound but not handled would be acked and dropped, one handled
    but not bound would never arrive."""
    bound = set(CONSUMERS.get(service, ()))
    if set(handled) != bound:
        raise SubscriptionMismatch(
            f"{service} handles {_names(handled)} but its queue receives {_names(bound)}"
        )


def shard_of(service: str, province_code: str) -> int:
    """The shard of a split ``service`` that receives ``province_code``'s events."""
    return int(province_code) % SHARDS[service]


def replay_headers(service: str, province_code: str | None) -> dict[str, str]:
    """The headers that route a replayed message of ``province_code`` back to ``service``'s
    queue, or for a split service to its province's shard (shard 0 when the letter names no
    province: poison, which dead-letters again)."""
    if service not in SHARDS:
        return {REPLAY_HEADER: service}
    shard = shard_of(service, province_code) if province_code in PROVINCE_CODES else 0
    return _shard_replay_headers(service, shard)


def _shard_replay_headers(service: str, shard: int) -> dict[str, str]:
    return {REPLAY_HEADER: service, REPLAY_SHARD_HEADER: str(shard)}


def _names(event_types: Collection[type[Event]]) -> list[str]:
    return sorted(event_type.name for event_type in event_types)


@dataclass(frozen=True, slots=True)
class ExchangeDefinition:
    name: str
    kind: Literal["topic", "direct", "headers"]


@dataclass(frozen=True, slots=True)
class QueueDefinition:
    name: str
    arguments: dict[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class BindingDefinition:
    exchange: str
    queue: str
    routing_key: str
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)
    """Header values a headers exchange matches (with ``x-match``)."""


@dataclass(frozen=True, slots=True)
class TopologyDefinition:
    """Everything to declare, in declaration order; all of it durable."""

    exchanges: tuple[ExchangeDefinition, ...]
    queues: tuple[QueueDefinition, ...]
    bindings: tuple[BindingDefinition, ...]


@dataclass(frozen=True, slots=True)
class Topology:
    """Exchange and queue names of one deployment (tests run in their own namespace)."""

    namespace: str = "vcs"

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def replay_exchange(self) -> str:
        return f"{self.namespace}.replay"

    def queue(self, service: str) -> str:
        return f"{self.namespace}.{service}"

    def consumed_queues(self, service: str) -> tuple[str, ...]:
        """The queues ``service`` consumes: its shards when split, else its one queue."""
        if service not in SHARDS:
            return (self.queue(service),)
        return tuple(f"{self.queue(service)}.{shard}" for shard in range(SHARDS[service]))

    def queue_for(self, service: str, province_code: str) -> str:
        """The queue where ``service`` receives the events of ``province_code``."""
        if service not in SHARDS:
            return self.queue(service)
        return self.consumed_queues(service)[shard_of(service, province_code)]

    def retired_queues(self, service: str) -> tuple[str, ...]:
        """Queues of earlier releases that ``service`` still drains: the unsplit queue of a
        split service. :func:`~vcs_shared.broker.retire_queues` unbinds them, so nothing new
        arrives; what waited there is consumed as before, and the empty queue can be deleted."""
        return (self.queue(service),) if service in SHARDS else ()

    def dead_letter_queue(self, service: str) -> str:
        return f"{self.queue(service)}.dlq"

    @property
    def audit_exchange(self) -> str:
        return f"{self.namespace}.audit"

    @property
    def audit_queue(self) -> str:
        """The desk's queue of audit entries."""
        return self.queue(AUDIT_CONSUMER)

    @property
    def feed_stream(self) -> str:
        return f"{self.namespace}.feed"

    @staticmethod
    def feed_stream_arguments() -> dict[str, Any]:
        """The live feed's stream: retention by age and by size."""
        return {
            "x-queue-type": "stream",
            "x-max-age": f"{FEED_RETENTION.days}D",
            "x-max-length-bytes": FEED_MAX_BYTES,
            "x-stream-max-segment-size-bytes": FEED_SEGMENT_BYTES,
        }

    def queue_arguments(self, service: str) -> dict[str, Any]:
        """A service queue: quorum, delivery limit (RabbitMQ 4.x would default it to 20), and
        at-least-once dead-lettering (quorum dead-lettering is at-most-once otherwise). A shard
        of a split service also has a single active consumer, and dead-letters to its service's
        one DLQ."""
        single_active = {"x-single-active-consumer": True} if service in SHARDS else {}
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.dead_exchange,
            "x-dead-letter-routing-key": self.queue(service),
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            **single_active,
        }

    def _service_bindings(self, service: str) -> list[BindingDefinition]:
        """``service``'s queues on the events exchange (a shard only for its provinces) and on
        the replay exchange."""
        if service not in SHARDS:
            return self._bindings(
                self.queue(service), binding_keys(service), {REPLAY_HEADER: service}
            )
        by_shard: list[list[str]] = [[] for _ in range(SHARDS[service])]
        for province in PROVINCE_CODES:
            by_shard[shard_of(service, province)].extend(
                f"{event_type.name}.{province}.*" for event_type in CONSUMERS[service]
            )
        return [
            binding
            for shard, (queue, keys) in enumerate(
                zip(self.consumed_queues(service), by_shard, strict=True)
            )
            for binding in self._bindings(queue, keys, _shard_replay_headers(service, shard))
        ]

    def retired_bindings(self, service: str) -> list[BindingDefinition]:
        """The bindings :meth:`retired_queues` had, which declaring the topology removes."""
        return [
            binding
            for queue in self.retired_queues(service)
            for binding in self._bindings(queue, binding_keys(service), {REPLAY_HEADER: service})
        ]

    def _bindings(
        self, queue: str, keys: Collection[str], replay: dict[str, str]
    ) -> list[BindingDefinition]:
        """``queue`` bound to the events exchange with ``keys``, and to the replay exchange on
        the ``replay`` headers."""
        return [
            *(BindingDefinition(self.exchange, queue, key) for key in keys),
            BindingDefinition(self.replay_exchange, queue, "", {"x-match": "all", **replay}),
        ]

    def definition(self) -> TopologyDefinition:
        """The exchanges, every consuming service's queue and DLQ, the feed stream, the audit
        queue and its DLQ, and their bindings."""
        queues: list[QueueDefinition] = []
        bindings: list[BindingDefinition] = []
        for service in CONSUMERS:
            dlq = self.dead_letter_queue(service)
            queues.extend(
                QueueDefinition(queue, self.queue_arguments(service))
                for queue in self.consumed_queues(service)
            )
            queues.append(QueueDefinition(dlq, {"x-queue-type": "classic"}))
            bindings.extend(self._service_bindings(service))
            bindings.append(BindingDefinition(self.dead_exchange, dlq, self.queue(service)))
        queues.append(QueueDefinition(self.feed_stream, self.feed_stream_arguments()))
        bindings.append(BindingDefinition(self.exchange, self.feed_stream, "#"))
        audit, audit_dlq = self.audit_queue, self.dead_letter_queue(AUDIT_CONSUMER)
        queues.append(QueueDefinition(audit, self.queue_arguments(AUDIT_CONSUMER)))
        queues.append(QueueDefinition(audit_dlq, {"x-queue-type": "classic"}))
        bindings.append(BindingDefinition(self.audit_exchange, audit, "#"))
        bindings.append(BindingDefinition(self.dead_exchange, audit_dlq, audit))
        return TopologyDefinition(
            exchanges=(
                ExchangeDefinition(self.exchange, "topic"),
                ExchangeDefinition(self.dead_exchange, "direct"),
                ExchangeDefinition(self.replay_exchange, "headers"),
                ExchangeDefinition(self.audit_exchange, "topic"),
            ),
            queues=tuple(queues),
            bindings=tuple(bindings),
        )
