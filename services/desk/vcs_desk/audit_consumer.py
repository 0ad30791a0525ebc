"""Takes the audit entries off ``<ns>.desk.audit`` into the audit log.

Its own consumer, not a handler table: the entries are not public events (they come
from the internal ``<ns>.audit`` exchange, :mod:`vcs_shared.audit`) and there is one
thing to do with each, append it. Acked only after the append; appending is keyed by the
CloudEvent id, so a redelivery adds nothing. An entry that can never be read is rejected,
and the queue dead-letters it to ``<ns>.desk.audit.dlq``; a store outage is waited out
in place (:func:`vcs_shared.broker.retry_in_place`), so it never spends the queue's delivery
limit; any other failure sends the message back to the queue, whose limit ends a loop.
"""

from __future__ import annotations

import asyncio

import stamina
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from vcs_desk.audit_log import AuditLog
from vcs_shared.broker import Topology, retry_in_place
from vcs_shared.envelope import PoisonMessage, decode_audit

log = structlog.get_logger(__name__)


class AuditConsumer:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        topology: Topology,
        audit_log: AuditLog,
        *,
        prefetch: int = 32,
        retry_timeout: float = 30.0,
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._log = audit_log
        self._prefetch = prefetch
        self._retry_timeout = retry_timeout
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        self._channel = channel
        # passive declare: registered with the robust channel, so consuming resumes after a
        # reconnect, and no configure permission is needed
        self._queue = await channel.declare_queue(self._topology.audit_queue, passive=True)
        self._tag = await self._queue.consume(self._on_message)
        log.info("audit_consumer.started", queue=self._queue.name)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stops taking entries and lets the ones in hand be appended (or redelivered later)."""
        if self._queue is not None and self._tag is not None:
            try:
                await self._queue.cancel(self._tag)
            except Exception as exc:  # the channel may be gone already; nothing is lost
                log.warning("audit_consumer.cancel_failed", error=repr(exc))
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._handle(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = decode_audit(message.body)
        except PoisonMessage as exc:
            log.warning("audit_consumer.poison", message_id=message.message_id, reason=str(exc))
            await message.reject(requeue=False)  # the queue dead-letters it to its DLQ
            return
        try:
            async for attempt in stamina.retry_context(
                on=retry_in_place(self._retry_timeout), attempts=None, timeout=None
            ):
                with attempt:
                    added = await self._log.append(
                        envelope.entry, entry_id=envelope.id, source=envelope.source
                    )
        except Exception:
            log.exception("audit_consumer.append_failed", event_id=envelope.id)
            await message.nack(requeue=True)
            return
        log.info(
            "audit.appended" if added else "audit.duplicate",
            event_id=envelope.id,
            action=envelope.entry.action.value,
        )
        await message.ack()
